#[clockworker::main]
async fn main<T: Default>() {
    let _value = T::default();
}

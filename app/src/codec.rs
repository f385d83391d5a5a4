//! The JSON codec of the pages' resources. It decodes with `serde_json::from_slice`, the
//! reader the server functions' answers go through too: `from_str` and `from_slice`
//! monomorphise every row type's deserializer apart, so with Leptos' default codec
//! (`from_str`) the browser build carried each one twice.

use leptos::prelude::Resource;

pub struct Json;

impl<T: serde::Serialize> codee::Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: serde::de::DeserializeOwned> codee::Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// `Resource::new` with [`Json`].
#[track_caller]
pub fn resource<T, S, Fut>(source: impl Fn() -> S + Send + Sync + 'static, fetcher: impl Fn(S) -> Fut + Send + Sync + 'static) -> Resource<T, Json>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

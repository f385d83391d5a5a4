//! Who sends a server function's request when it is called as a client: the browser's fetch
//! in the page, and outside the browser (the `swell` CLI) server_fn's reqwest client with the
//! caller's API token, so the CLI calls the very functions the dashboard calls.

#[cfg(not(feature = "ssr"))]
pub type ApiClient = leptos::server_fn::client::browser::BrowserClient;

#[cfg(feature = "ssr")]
pub use token::{ApiClient, last_status, set_token};

#[cfg(feature = "ssr")]
mod token {
    use std::future::Future;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU16, Ordering};

    use http::{HeaderValue, header::AUTHORIZATION};
    use leptos::server_fn::Bytes;
    use leptos::server_fn::client::{Client, reqwest::ReqwestClient};
    use leptos::server_fn::error::FromServerFnError;

    static TOKEN: OnceLock<String> = OnceLock::new();
    static LAST_STATUS: AtomicU16 = AtomicU16::new(0);

    /// The API token every call carries from now on (once per process).
    pub fn set_token(token: String) {
        let _ = TOKEN.set(token);
    }

    /// The HTTP status of the last answer (0 before any): a server function's error says
    /// why in its message, the status says what kind of failure it was (403, 404, …).
    pub fn last_status() -> u16 {
        LAST_STATUS.load(Ordering::Relaxed)
    }

    /// server_fn's reqwest client plus `Authorization: Bearer <token>`.
    pub struct ApiClient;

    impl<E, IS, OS> Client<E, IS, OS> for ApiClient
    where
        E: FromServerFnError,
        IS: FromServerFnError,
        OS: FromServerFnError,
    {
        type Request = <ReqwestClient as Client<E, IS, OS>>::Request;
        type Response = <ReqwestClient as Client<E, IS, OS>>::Response;

        fn send(mut req: Self::Request) -> impl Future<Output = Result<Self::Response, E>> + Send {
            if let Some(token) = TOKEN.get()
                && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}"))
            {
                value.set_sensitive(true);
                req.headers_mut().insert(AUTHORIZATION, value);
            }
            async move {
                let res = <ReqwestClient as Client<E, IS, OS>>::send(req).await?;
                LAST_STATUS.store(res.status().as_u16(), Ordering::Relaxed);
                Ok(res)
            }
        }

        fn open_websocket(
            path: &str,
        ) -> impl Future<
            Output = Result<
                (impl futures::Stream<Item = Result<Bytes, Bytes>> + Send + 'static, impl futures::Sink<Bytes> + Send + 'static),
                E,
            >,
        > + Send {
            <ReqwestClient as Client<E, IS, OS>>::open_websocket(path)
        }

        fn spawn(future: impl Future<Output = ()> + Send + 'static) {
            <ReqwestClient as Client<E, IS, OS>>::spawn(future)
        }
    }
}

//! A form that calls a server function: a plain POST to the function's URL without
//! JavaScript, and in the browser the action dispatched with the arguments the page builds
//! from the fields by name. Leptos' `ActionForm` does the same through serde_qs, generic over
//! each function (a deserializer per form in the wasm), and needs the browser's client type.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// A submitted form's fields by name.
pub struct Fields(#[cfg(feature = "hydrate")] web_sys::FormData);

impl Fields {
    /// The field's text; empty when the form has no such field.
    pub fn text(&self, name: &str) -> String {
        #[cfg(feature = "hydrate")]
        return self.0.get(name).as_string().unwrap_or_default();
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = name;
            String::new()
        }
    }

    /// A whole-number field (ids, versions); -1 when it is not one, which the server refuses.
    pub fn int(&self, name: &str) -> i32 {
        self.text(name).trim().parse().unwrap_or(-1)
    }
}

/// The form for one server function; the markup and the submit handler are [`PostForm`]'s,
/// shared by every function (one copy in the wasm, not one per function).
#[component]
pub fn Form<S>(action: ServerAction<S>, class: &'static str, args: fn(&Fields) -> S, children: Children) -> impl IntoView
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    let submit = Callback::new(move |fields: Fields| {
        action.dispatch(args(&fields));
    });
    view! { <PostForm url=S::url() class=class submit=submit>{children()}</PostForm> }
}

#[component]
fn PostForm(url: &'static str, class: &'static str, submit: Callback<Fields>, children: Children) -> impl IntoView {
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let form = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok());
            if let Some(data) = form.and_then(|f| web_sys::FormData::new_with_form(&f).ok()) {
                ev.prevent_default();
                submit.run(Fields(data));
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, submit);
    };
    view! {
        <form method="post" action=url class=class on:submit=on_submit>
            {children()}
        </form>
    }
}

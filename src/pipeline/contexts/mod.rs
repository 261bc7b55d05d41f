//! The four contexts a store asks in, each gathering its candidates (stage 1) and handing them to
//! `stages::finish` (stages 2–4): the home page, a product page, a cart, and a product's
//! frequently-bought-together list; popularity answers when a context has nothing to go on.
pub mod cart;
pub mod cold_start;
pub mod fbt;
pub mod homepage;
pub mod similar;

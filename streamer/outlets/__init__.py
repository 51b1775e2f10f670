"""Outlets: where the judgement goes: the protocol and its schemas, the websocket server
with its access policy and browser overlay, and the terminal view."""

"""Outlets: where the judgement goes: protocol, websocket server, overlay, terminal view.

The protocol and its schemas, the broadcast server with its access policy and slow-client
pacing, the browser overlay it serves, the terminal view, and the one genre palette.
"""

"""Live rooms: the wire protocol, per-room state and fan-out, the hub, Redis scale-out, tokens.

``setup_rooms(app)`` (vrhub.rooms.web) adds the websocket endpoint and friends to an aiohttp app.
"""

"""The gateway's local endpoint on the bank's LAN (FastAPI, uvicorn): the attendant page
(:mod:`gateway.http.attendant`), the local API for `wastebank attend` and `wastebank calibrate`
(:mod:`gateway.http.scales`), health (:mod:`gateway.http.health`), served by
:func:`gateway.http.local_api.serve`.

Composed at start-up by :mod:`gateway.run` when ``http_port`` is set, so a site without the
endpoint never loads FastAPI; nothing below it (the app, the recorder, the readers) imports it.
"""

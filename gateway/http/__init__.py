"""The gateway's local endpoint on the bank's LAN (Starlette, uvicorn): the attendant page
(:mod:`gateway.http.attendant`), the local API for `wastebank attend` and `wastebank calibrate`
(:mod:`gateway.http.scales`), health (:mod:`gateway.http.health`), served by
:func:`gateway.http.local_api.serve`.

Composed at start-up by :mod:`gateway.run` when ``http_port`` is set, so a site without the
endpoint never loads Starlette or uvicorn; nothing below it (the app, the recorder, the readers)
imports it. No FastAPI (an import-linter contract): its import and per-route models cost a Pi
~10 MB, and :mod:`gateway.http.routing` does the little of it these routes need.
"""

"""`koner serve`: an HTTP NER service on uvicorn + Starlette (the `[serve]` extra).

`gate` admits requests to a bounded pool of inference slots; `metrics` holds the Prometheus
figures; `app` is the Starlette application (routes, validation, errors, auth, access log). The
`koner serve` verb (its options, socket and uvicorn) is `koner.cli.serve`. Nothing here is imported by
`import koner`.
"""

"""`koner serve`: an HTTP NER service on uvicorn + Starlette (the `[serve]` extra).

`gate` admits requests to a bounded pool of inference slots; `metrics` holds the Prometheus
figures; `app` is the Starlette application (routes, validation, errors, auth, access log); `cli`
is the `koner serve` verb. Nothing here is imported by `import koner`.
"""

"""`koner serve`: an HTTP NER service on uvicorn + Starlette (the `[serve]` extra).

`app` wires the Starlette application: `middleware` (access log, Host list, API key) around
`routes` (one method a route), which read a body with `requests`, run it on the `service` and answer
with `responses`; `gate` admits requests to a bounded pool of inference slots; `metrics` holds the
Prometheus figures. The `koner serve` verb (its options, socket and uvicorn) is `koner.cli.serve`.
Nothing here is imported by `import koner`.
"""

import json
import pymongo.errors
from tests.helpers.graphql import ALICE, WORKER, ANON

async def test_probe(api, store, settings, monkeypatch):
    c = api.client
    h = ALICE.headers(settings)
    def show(label, r):
        print("\n###", label, r.status_code, r.headers.get("content-type"), r.text[:600])
    show("get query", await c.get("/graphql", params={"query": "{ viewer { userId } }"}, headers=h))
    show("get gql-resp", await c.get("/graphql", params={"query": "{ viewer { userId } }"}, headers={**h, "accept": "application/graphql-response+json"}))
    show("parse json", await c.post("/graphql", json={"query": "{ viewer { "}, headers=h))
    show("parse gqlresp", await c.post("/graphql", json={"query": "{ viewer { "}, headers={**h, "accept": "application/graphql-response+json"}))
    show("valid gqlresp", await c.post("/graphql", json={"query": "{ nope }"}, headers={**h, "accept": "application/graphql-response+json"}))
    show("valid json", await c.post("/graphql", json={"query": "{ nope }"}, headers={**h, "accept": "application/json"}))
    show("mutation get", await c.get("/graphql", params={"query": "mutation { claimJob { jobId } }"}, headers=h))
    show("406", await c.post("/graphql", json={"query": "{ viewer { userId } }"}, headers={**h, "accept": "text/plain"}))
    show("ctype", await c.post("/graphql", content=b"query", headers={**h, "content-type": "text/plain"}))
    show("ctype xml", await c.post("/graphql", content=b"<q/>", headers={**h, "content-type": "application/xml"}))
    r = await c.get("/graphql", headers={"accept": "text/html"})
    print("\n### html", r.status_code, r.headers.get("content-type"), r.text[:200])
    show("healthz", await c.get("/healthz"))
    show("big", await c.post("/graphql", content=b"x" * (settings.max_body_bytes + 1), headers={**h, "content-type": "application/json"}))
    show("loglevel", await api.post("mutation($id: ID!, $e: [LogEntryInput!]!) { appendJobLogs(jobId: $id, entries: $e) { jobId } }", {"id": "x", "e": [{"level": "TRACE", "message": "m"}]}))
    show("loglevel inline", await api.post('mutation { appendJobLogs(jobId: "x", entries: [{level: TRACE, message: "m"}]) { jobId } }'))
    show("status filter", await api.post('query($f: JobFilterInput) { jobs(filter: $f) { totalCount } }', {"f": {"status": "DONE"}}))
    show("notfound", await api.post('{ job(jobId: "nope") { jobId } }'))
    show("cursor", await api.post('{ jobs(after: "!!bad") { totalCount } }'))
    show("first", await api.post('{ jobs(first: 101) { totalCount } }'))
    show("claim none", await api.post('mutation { claimJob { jobId } }', as_=WORKER))
    show("anon viewer", await api.post('{ viewer { userId roles anonymous } }', as_=ANON))
    show("create params $", await api.post('mutation($i: CreateJobInput!) { createJob(input: $i) { jobId } }', {"i": {"jobType": "pdf", "parameters": {"a": {"$b": 1}}}}))
    async def boom(*a, **k):
        raise RuntimeError("secret detail")
    monkeypatch.setattr(type(store.jobs), "get", boom)
    show("internal", await api.post('{ job(jobId: "nope") { jobId } }'))
    async def down(*a, **k):
        raise pymongo.errors.ServerSelectionTimeoutError("no servers")
    monkeypatch.setattr(type(store.jobs), "get", down)
    show("dbdown", await api.post('{ job(jobId: "nope") { jobId } }'))

"""The floor under `benchmarks/serve.py`'s figures: a bare FastAPI app on uvicorn whose one
endpoint reads the body and answers a constant, so that one HTTP round trip of the same body by
the same client on this machine is measured beside the service's."""

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/echo")
async def echo(request: Request) -> dict[str, int]:
    return {"bytes": len(await request.body())}

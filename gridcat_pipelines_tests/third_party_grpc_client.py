"""A gRPC client that knows nothing of gridcat: grpcio stubs generated from proto/ (by the test,
into ``--stubs``) and Google's protobuf runtime. Run as a separate process by test_api_proto.py.

Reads one JSON call per line on stdin, ``{"service", "method", "request", "metadata"}`` with
``request`` in protobuf JSON (``json_format``), and answers each with one line of JSON:
``{"ok": <response as protobuf JSON, proto field names>, "headers": {...}}`` or
``{"error": {"code", "message", "details": [<gridapi.v1.ErrorDetail values>]}}``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="host:port of the gRPC port")
    parser.add_argument("--stubs", required=True, help="directory holding the generated gridapi package")
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)

    import grpc
    from google.protobuf import json_format
    from grpc_status import rpc_status

    common = importlib.import_module("gridapi.v1.common_pb2")
    modules = {
        "StateService": "state_service",
        "StateFacetService": "state_facet_service",
    }
    with grpc.insecure_channel(args.target) as channel:
        for line in sys.stdin:
            call = json.loads(line)
            module = modules[call["service"]]
            messages = importlib.import_module(f"gridapi.v1.{module}_pb2")
            stubs = importlib.import_module(f"gridapi.v1.{module}_pb2_grpc")
            stub = getattr(stubs, f"{call['service']}Stub")(channel)
            request = json_format.ParseDict(call["request"], getattr(messages, f"{call['method']}Request")())
            try:
                response, rpc_call = getattr(stub, call["method"]).with_call(
                    request, metadata=[tuple(m) for m in call.get("metadata", [])], timeout=30
                )
            except grpc.RpcError as exc:
                status = rpc_status.from_call(exc)
                details = []
                for packed in status.details if status else ():
                    detail = common.ErrorDetail()
                    packed.Unpack(detail)
                    details.append(json_format.MessageToDict(detail.value))
                _answer({"error": {"code": exc.code().name.lower(), "message": exc.details(), "details": details}})
                continue
            _answer(
                {
                    "ok": json_format.MessageToDict(response, preserving_proto_field_name=True),
                    "headers": dict(rpc_call.initial_metadata()),
                }
            )
    return 0


def _answer(outcome: dict) -> None:
    sys.stdout.write(json.dumps(outcome) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

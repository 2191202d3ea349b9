"""``leasehold function create|update|list|get|delete|publish``: manage functions through the Lambda API.

Example::

    leasehold function create resize --dir ./resize --handler app.handler --memory 256 --env STAGE=dev
    leasehold function update resize --timeout 30
    leasehold function list --json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from assignment.commands.api import CliError, call, lambda_client
from assignment.commands.code import read_zip, zip_folder
from assignment.commands.common import EXIT_OK, common_parser, guarded
from assignment.commands.output import (
    PROGRESS_MIN_BYTES,
    ProgressReader,
    human_bytes,
    print_json,
    print_table,
    stderr_is_tty,
    upload_progress,
)

__all__ = ["register"]

#: The role every function gets: Leasehold has no IAM, but the Lambda API requires one.
DEFAULT_ROLE = "arn:aws:iam::000000000000:role/leasehold"
DEFAULT_RUNTIME = "python3.12"
_MAX_ENV = 4 * 1024  # Lambda's limit on the environment's total size


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``function`` and its six subcommands to ``subparsers``."""
    common = common_parser()
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "function", help="create, update, list, get, delete or publish functions", description=__doc__
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[common], help="create a function from a zip or a folder")
    create.add_argument("name", metavar="NAME")
    _add_code(create, required=True)
    _add_configuration(create, defaults=True)
    create.add_argument("--publish", action="store_true", help="also publish version 1")
    create.set_defaults(func=guarded(_create))

    update = actions.add_parser("update", parents=[common], help="change a function's code and/or configuration")
    update.add_argument("name", metavar="NAME")
    _add_code(update, required=False)
    _add_configuration(update, defaults=False)
    update.add_argument("--publish", action="store_true", help="publish a version with the new code")
    update.set_defaults(func=guarded(_update))

    listing = actions.add_parser("list", parents=[common], help="list functions")
    listing.set_defaults(func=guarded(_list))

    get = actions.add_parser("get", parents=[common], help="show a function's configuration")
    get.add_argument("name", metavar="NAME")
    get.add_argument("--qualifier", help="a version number or $LATEST")
    get.set_defaults(func=guarded(_get))

    delete = actions.add_parser("delete", parents=[common], help="delete a function (or one version)")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--qualifier", help="delete only this version")
    delete.set_defaults(func=guarded(_delete))

    publish = actions.add_parser("publish", parents=[common], help="publish $LATEST as a new version")
    publish.add_argument("name", metavar="NAME")
    publish.add_argument("--description", default="")
    publish.set_defaults(func=guarded(_publish))
    return parser


def _add_code(parser: argparse.ArgumentParser, *, required: bool) -> None:
    code = parser.add_mutually_exclusive_group(required=required)
    code.add_argument("--zip", type=Path, metavar="FILE", help="a zip file with the code")
    code.add_argument("--dir", type=Path, metavar="DIR", help="a folder, zipped in memory")


def _add_configuration(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    parser.add_argument("--handler", default="lambda_function.lambda_handler" if defaults else None)
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME if defaults else None)
    parser.add_argument("--memory", type=int, default=128 if defaults else None, metavar="MB", help="128-10240")
    parser.add_argument("--timeout", type=int, default=3 if defaults else None, metavar="S", help="1-900 seconds")
    parser.add_argument("--env", type=_env_pair, action="append", metavar="K=V", help="an environment variable")
    parser.add_argument("--layer", action="append", metavar="ARN", help="a layer version ARN (up to 5)")
    parser.add_argument("--description", default=None)


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not key.replace("_", "a").isalnum() or not key[0].isalpha():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE with a KEY of letters, digits and _")
    return key, value


def _configuration(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration parameters the flags set (only those given)."""
    params: dict[str, Any] = {}
    for flag, param in (
        ("handler", "Handler"),
        ("runtime", "Runtime"),
        ("memory", "MemorySize"),
        ("timeout", "Timeout"),
        ("description", "Description"),
    ):
        value = getattr(args, flag)
        if value is not None:
            params[param] = value
    if args.env is not None:
        variables = dict(args.env)
        if sum(len(k) + len(v) for k, v in variables.items()) > _MAX_ENV:
            raise CliError("InvalidParameterValueException", f"the environment exceeds {_MAX_ENV} bytes")
        params["Environment"] = {"Variables": variables}
    if args.layer is not None:
        params["Layers"] = list(args.layer)
    return params


def _code(args: argparse.Namespace) -> bytes | None:
    if args.zip is not None:
        return read_zip(args.zip)
    if args.dir is not None:
        return zip_folder(args.dir)
    return None


def _with_upload_progress(client: Any, operation: str, name: str, size: int) -> None:
    """Show upload progress for this call when stderr is a terminal and the zip is large."""
    if size <= PROGRESS_MIN_BYTES or not stderr_is_tty():
        return
    report = upload_progress(name)

    def wrap_body(request: Any, **_: Any) -> None:
        body = request.body
        if isinstance(body, bytes | bytearray):
            request.body = ProgressReader(bytes(body), report)

    client.meta.events.register(f"before-send.lambda.{operation}", wrap_body)


def _create(args: argparse.Namespace) -> int:
    blob = _code(args)
    assert blob is not None  # the argument group is required
    client = lambda_client(args.endpoint)
    _with_upload_progress(client, "CreateFunction", args.name, len(blob))
    answer = call(
        client.create_function,
        FunctionName=args.name,
        Role=DEFAULT_ROLE,
        Code={"ZipFile": blob},
        Publish=args.publish,
        **_configuration(args),
    )
    _show_configuration(args, answer)
    return EXIT_OK


def _update(args: argparse.Namespace) -> int:
    blob = _code(args)
    configuration = _configuration(args)
    if blob is None and not configuration and not args.publish:
        raise CliError("InvalidParameterValueException", "nothing to update: give code and/or configuration flags")
    client = lambda_client(args.endpoint)
    answer: dict[str, Any] = {}
    if configuration:
        answer = call(client.update_function_configuration, FunctionName=args.name, **configuration)
    if blob is not None:
        _with_upload_progress(client, "UpdateFunctionCode", args.name, len(blob))
        answer = call(client.update_function_code, FunctionName=args.name, ZipFile=blob, Publish=args.publish)
    elif args.publish:
        answer = call(client.publish_version, FunctionName=args.name)
    _show_configuration(args, answer)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    client = lambda_client(args.endpoint)
    functions: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        page = call(client.list_functions, **({"Marker": marker} if marker else {}))
        functions.extend(page.get("Functions", []))
        marker = page.get("NextMarker")
        if not marker:
            break
    if args.json:
        print_json({"Functions": functions})
        return EXIT_OK
    rows = [
        [
            f.get("FunctionName"),
            f.get("Runtime"),
            f.get("Handler"),
            f.get("MemorySize"),
            f.get("Timeout"),
            human_bytes(int(f.get("CodeSize") or 0)),
            f.get("LastModified"),
        ]
        for f in functions
    ]
    print_table(["NAME", "RUNTIME", "HANDLER", "MEMORY", "TIMEOUT", "CODE", "MODIFIED"], rows)
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    client = lambda_client(args.endpoint)
    params = {"Qualifier": args.qualifier} if args.qualifier else {}
    answer = call(client.get_function, FunctionName=args.name, **params)
    if args.json:
        print_json(answer)
        return EXIT_OK
    _show_configuration(args, answer.get("Configuration", {}))
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    client = lambda_client(args.endpoint)
    params = {"Qualifier": args.qualifier} if args.qualifier else {}
    call(client.delete_function, FunctionName=args.name, **params)
    target = f"{args.name}:{args.qualifier}" if args.qualifier else args.name
    if args.json:
        print_json({"Deleted": target})
    else:
        print(f"deleted {target}")
    return EXIT_OK


def _publish(args: argparse.Namespace) -> int:
    client = lambda_client(args.endpoint)
    answer = call(client.publish_version, FunctionName=args.name, Description=args.description)
    _show_configuration(args, answer)
    return EXIT_OK


_FIELDS = (
    "FunctionName",
    "Version",
    "FunctionArn",
    "Runtime",
    "Handler",
    "MemorySize",
    "Timeout",
    "CodeSize",
    "CodeSha256",
    "State",
    "LastModified",
    "Description",
)


def _show_configuration(args: argparse.Namespace, configuration: dict[str, Any]) -> None:
    if args.json:
        print_json(configuration)
        return
    rows: list[list[Any]] = [[key, configuration.get(key)] for key in _FIELDS if key in configuration]
    variables = configuration.get("Environment", {}).get("Variables", {})
    rows += [[f"Environment.{key}", value] for key, value in sorted(variables.items())]
    rows += [["Layer", layer.get("Arn")] for layer in configuration.get("Layers", [])]
    print_table(["FIELD", "VALUE"], rows)

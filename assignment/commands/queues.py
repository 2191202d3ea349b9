"""``leasehold queue create|list|send|receive|purge|delete``: the platform's SQS queues, by name.

The commands are boto3's SQS client against the frontend (which serves SQS on its Lambda endpoint), so
they show exactly what an SQS user sees; errors are SQS's (``error: AWS.SimpleQueueService.NonExistentQueue:
The specified queue does not exist.``). ``receive`` leaves the messages in flight for their visibility
timeout unless ``--delete`` is given (then each is deleted after it was printed).

Example::

    leasehold queue create jobs --attribute VisibilityTimeout=60
    leasehold queue create orders.fifo --attribute FifoQueue=true --attribute ContentBasedDeduplication=true
    leasehold queue send jobs '{"id": 1}'
    leasehold queue receive jobs --max 10 --wait 20 --delete
    leasehold queue list --prefix jo
"""

from __future__ import annotations

import argparse
from typing import Any

from assignment.commands.api import CliError, call, sqs_client
from assignment.commands.common import EXIT_OK, common_parser, guarded, positive_int
from assignment.commands.output import print_json, print_table

__all__ = ["register"]

#: The attributes ``list`` shows for each queue.
_DEPTHS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


def _attribute(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _seconds(most: int) -> Any:
    def parse(text: str) -> int:
        if not text.isdigit() or not 0 <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds from 0 to {most}")
        return int(text)

    return parse


def register(subparsers: Any) -> None:
    """Add ``queue`` and its actions to ``subparsers``."""
    common = common_parser()
    queue: argparse.ArgumentParser = subparsers.add_parser("queue", help="SQS queues", description=__doc__)
    actions = queue.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[common], help="create a queue (FIFO: a name ending in .fifo)")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--attribute", type=_attribute, action="append", default=[], metavar="NAME=VALUE", help="a queue attribute"
    )
    create.set_defaults(func=guarded(_create))

    listing = actions.add_parser("list", parents=[common], help="queues and their depths")
    listing.add_argument("--prefix", default="", help="only names starting with this")
    listing.set_defaults(func=guarded(_list))

    send = actions.add_parser("send", parents=[common], help="send one message")
    send.add_argument("name", metavar="NAME")
    send.add_argument("body", metavar="BODY")
    send.add_argument("--delay", type=_seconds(900), help="seconds before it can be received")
    send.add_argument("--group-id", help="MessageGroupId (FIFO)")
    send.add_argument("--dedup-id", help="MessageDeduplicationId (FIFO)")
    send.set_defaults(func=guarded(_send))

    receive = actions.add_parser("receive", parents=[common], help="receive messages (and delete them)")
    receive.add_argument("name", metavar="NAME")
    receive.add_argument("--max", type=positive_int(10), default=1, help="at most this many (1-10)")
    receive.add_argument("--wait", type=_seconds(20), default=0, help="long-poll up to this many seconds")
    receive.add_argument("--visibility", type=_seconds(43_200), help="seconds the messages stay invisible")
    receive.add_argument("--delete", action="store_true", help="delete each message once printed")
    receive.set_defaults(func=guarded(_receive))

    for action, text, handler in (
        ("purge", "delete every message", _purge),
        ("delete", "delete the queue and its messages", _delete),
    ):
        parser = actions.add_parser(action, parents=[common], help=text)
        parser.add_argument("name", metavar="NAME")
        parser.set_defaults(func=guarded(handler))


def _url(client: Any, name: str) -> str:
    url: str = call(client.get_queue_url, QueueName=name)["QueueUrl"]
    return url


def _create(args: argparse.Namespace) -> int:
    attributes = dict(args.attribute)
    if len(attributes) != len(args.attribute):
        raise CliError("InvalidParameterValue", "an attribute is given twice")
    answer = call(sqs_client(args.endpoint).create_queue, QueueName=args.name, Attributes=attributes)
    print_json(answer) if args.json else print(answer["QueueUrl"])
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    client = sqs_client(args.endpoint)
    urls: list[str] = []
    token: str | None = None
    while True:
        page = call(
            client.list_queues, QueueNamePrefix=args.prefix, MaxResults=1000, **({"NextToken": token} if token else {})
        )
        urls += page.get("QueueUrls", [])
        token = page.get("NextToken")
        if not token:
            break
    rows = []
    for url in urls:
        attributes = call(client.get_queue_attributes, QueueUrl=url, AttributeNames=list(_DEPTHS)).get("Attributes", {})
        rows.append({"QueueUrl": url, **{name: attributes.get(name) for name in _DEPTHS}})
    if args.json:
        print_json({"Queues": rows})
        return EXIT_OK
    print_table(
        ["QUEUE", "VISIBLE", "IN_FLIGHT", "DELAYED"],
        [[row["QueueUrl"].rsplit("/", 1)[1], *(row[name] for name in _DEPTHS)] for row in rows],
    )
    return EXIT_OK


def _send(args: argparse.Namespace) -> int:
    client = sqs_client(args.endpoint)
    params: dict[str, Any] = {"QueueUrl": _url(client, args.name), "MessageBody": args.body}
    for key, value in (("DelaySeconds", args.delay), ("MessageGroupId", args.group_id),
                       ("MessageDeduplicationId", args.dedup_id)):  # fmt: skip
        if value is not None:
            params[key] = value
    answer = call(client.send_message, **params)
    print_json(answer) if args.json else print(answer["MessageId"])
    return EXIT_OK


def _receive(args: argparse.Namespace) -> int:
    client = sqs_client(args.endpoint, retries=0)
    url = _url(client, args.name)
    params: dict[str, Any] = {
        "QueueUrl": url,
        "MaxNumberOfMessages": args.max,
        "WaitTimeSeconds": args.wait,
        "MessageSystemAttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    if args.visibility is not None:
        params["VisibilityTimeout"] = args.visibility
    messages = call(client.receive_message, **params).get("Messages", [])
    if args.json:
        print_json({"Messages": messages})
    else:
        print_table(
            ["MESSAGE_ID", "RECEIVES", "BODY"],
            [[m["MessageId"], m.get("Attributes", {}).get("ApproximateReceiveCount"), m["Body"]] for m in messages],
        )
    if args.delete:
        for message in messages:
            call(client.delete_message, QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return EXIT_OK


def _purge(args: argparse.Namespace) -> int:
    client = sqs_client(args.endpoint)
    call(client.purge_queue, QueueUrl=_url(client, args.name))
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    client = sqs_client(args.endpoint)
    call(client.delete_queue, QueueUrl=_url(client, args.name))
    return EXIT_OK

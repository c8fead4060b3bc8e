"""Smoke test of a Python client generated from ladder's OpenAPI document.

Why: integrators generate clients from `/v1/openapi.json`; this script is
one, run against a real `ladder serve`, so a document that disagrees with
what the server answers fails CI instead of an integrator's build. It uses
only the generated package's call functions and typed models (no hand-made
requests) and is stricter than the generated parsers in two ways:

- every answer must parse into the model its status documents (an
  undocumented status raises, a wrong shape raises),
- the parsed model, written back with `to_dict()`, must equal the JSON the
  server sent (a field the document does not declare is dropped by the
  generated parser, so it shows up here), and the JSON must validate
  against the document's schema of that model (types, enums, nullability).

Every mismatch is collected and printed; the script exits 1 if there was
any, 0 otherwise.

Usage (see README.md beside this file):

    LADDER_SMOKE_KEY=ldr_sender_... [LADDER_SMOKE_ADMIN_KEY=ldr_admin_...] \\
        PYTHONPATH=<dir holding ladder_client> python3 smoke.py --base http://127.0.0.1:7878
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from ladder_client import AuthenticatedClient, Client
from ladder_client.api.audit import (
    audit_log,
    checkpoint_now,
    consistency_proof,
    inclusion_proof,
    latest_checkpoint,
    list_checkpoints,
    read_audit,
)
from ladder_client.api.devices import enrol_device, issue_challenge, submit_handshake
from ladder_client.api.escalations import block_escalation, list_escalations
from ladder_client.api.messages import (
    confirm_message,
    explain_message,
    get_message,
    list_messages,
    new_confirmation_token,
    revoke_message,
    send_message,
)
from ladder_client.api.operations import healthz, openapi, readyz, sandbox_deliveries
from ladder_client.api.overrides import (
    clear_override,
    list_overrides,
    renew_override,
    set_override,
)
from ladder_client.api.policy import get_policy, get_policy_version, list_policy_versions
from ladder_client.api.recipients import get_recipient, list_recipients, register_recipient
from ladder_client.api.stats import get_class_stats, get_stats
from ladder_client.api.threads import get_thread, list_threads
from ladder_client.models import (
    AuditLog,
    AuditPage,
    BlockEscalationBody,
    Challenge,
    CheckpointAnswer,
    CheckpointList,
    ConfirmRequest,
    ConfirmationTokenAnswer,
    ConsistencyProof,
    Dashboard,
    Device,
    Error,
    Escalations,
    HandshakeResult,
    Health,
    InclusionProof,
    Message,
    MessageRevoked,
    Messages,
    NewDevice,
    NewDeviceLabels,
    NewRecipient,
    OverrideList,
    OverrideSet,
    PolicyInfo,
    PolicyVersionSource,
    QueueAction,
    Readiness,
    Recipient,
    RecipientView,
    Recipients,
    RenewOverrideBody,
    SandboxDeliveries,
    SendAnswer,
    SendRequest,
    OverrideRequest,
    SubmitHandshakeBody,
    Thread,
    Threads,
    Versions,
)

# Domain separation of the signed handshake bytes (crates/core/src/handshake.rs).
HANDSHAKE_CONTEXT = b"ladder capability handshake v1\n"
# The demo tenant's policy (examples/policies/acme.toml) names this client.
CLIENT = {"name": "acme-lite", "version": "1.4", "policy_revision": 4}
LABELS = {"os": "android", "os_version": "15", "client": "acme-lite", "client_version": "1.4"}
STATUS_WAIT_S = 30.0


class Smoke:
    """One run: the clients, the document's schemas, the mismatches found."""

    def __init__(self, base: str, key: str, admin_key: str | None) -> None:
        self.public = Client(base_url=base, raise_on_unexpected_status=True)
        self.client = AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True)
        self.admin = (
            AuthenticatedClient(base_url=base, token=admin_key, raise_on_unexpected_status=True)
            if admin_key
            else None
        )
        self.mismatches: list[str] = []
        answer = openapi.sync_detailed(client=self.public)
        if answer.status_code != 200 or answer.parsed is None:
            raise SystemExit(f"GET /v1/openapi.json answered {answer.status_code}")
        document = answer.parsed.to_dict()
        resource = referencing.Resource.from_contents(
            document, default_specification=referencing.jsonschema.DRAFT202012
        )
        self.registry = referencing.Registry().with_resource("urn:ladder:openapi", resource)
        self.schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def answer(self, what: str, response: Any, status: int | tuple[int, ...], model: type) -> Any:
        """The parsed answer of `what`, which must be `status` (or one of
        them) and `model`; records where the JSON and the model disagree."""
        if int(response.status_code) not in (status if isinstance(status, tuple) else (status,)):
            raise SystemExit(f"{what}: answered {int(response.status_code)}, expected {status}")
        parsed = response.parsed
        if not isinstance(parsed, model):
            raise SystemExit(
                f"{what}: parsed as {type(parsed).__name__}, expected {model.__name__}"
            )
        raw = json.loads(response.content)
        for path in differences(raw, parsed.to_dict(), ""):
            self.mismatches.append(f"{what} ({model.__name__}): {path}")
        name = model.__name__
        if name not in self.schemas:
            # An inline answer schema: the
            # read-back above is the check.
            return parsed
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"urn:ladder:openapi#/components/schemas/{name}"}, registry=self.registry
        )
        for error in validator.iter_errors(raw):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            self.mismatches.append(f"{what} ({name}): at `{where}`: {error.message[:200]}")
        return parsed

    def handshake(self, device: str, key: Ed25519PrivateKey, rcs_e2ee: str) -> HandshakeResult:
        """A fresh challenge, then a report of RCS with `rcs_e2ee`, signed."""
        challenge = self.answer(
            "issue challenge",
            issue_challenge.sync_detailed(device, client=self.client),
            201,
            Challenge,
        )
        report = {
            "device": device,
            "nonce": challenge.nonce,
            "client": CLIENT,
            "transports": {"rcs": {"reachable": True, "e2ee": rcs_e2ee, "attested": False}},
        }
        # The signed bytes are the server's canonical JSON of the report:
        # fields in declaration order, no whitespace.
        signed = HANDSHAKE_CONTEXT + json.dumps(report, separators=(",", ":")).encode()
        body = SubmitHandshakeBody.from_dict({"report": report, "signature": key.sign(signed).hex()})
        return self.answer(
            f"handshake (rcs {rcs_e2ee})",
            submit_handshake.sync_detailed(device, client=self.client, body=body),
            200,
            HandshakeResult,
        )

    def send(self, what: str, recipient: str, class_: str, status: int) -> SendAnswer:
        return self.send_as(what, recipient, class_, status, SendAnswer)

    def send_as(
        self, what: str, recipient: str, class_: str, status: int, model: type = Error
    ) -> Any:
        body = SendRequest.from_dict(
            {"recipient": recipient, "class": class_, "body": f"smoke test: {class_}"}
        )
        response = send_message.sync_detailed(
            client=self.client, body=body, idempotency_key=f"smoke-{uuid.uuid4()}"
        )
        return self.answer(what, response, status, model)

    def run(self) -> None:
        run = uuid.uuid4().hex[:8]
        recipient = self.answer(
            "register recipient",
            register_recipient.sync_detailed(
                client=self.client,
                body=NewRecipient(
                    external_id=f"smoke-{run}", email="smoke@example.com", phone="+15550100999"
                ),
            ),
            201,
            Recipient,
        )
        print(f"recipient {recipient.id}")

        key = Ed25519PrivateKey.generate()
        identity = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        device = self.answer(
            "enrol device",
            enrol_device.sync_detailed(
                recipient.id,
                client=self.client,
                body=NewDevice(identity_key=identity, labels=NewDeviceLabels.from_dict(LABELS)),
            ),
            201,
            Device,
        )
        self.handshake(device.id, key, "verified")

        first = self.send("payroll over verified RCS E2EE", recipient.id, "payroll", 202)
        # The thread shows what was handed over: wait for the hand-over.
        print(f"payroll {first.id}: {label(first.outcome)}, {label(self.wait_past_queued(first.id))}")
        # The phone's RCS client stops verifying E2EE: the next payroll
        # notice falls below what the thread showed, and the class wants the
        # sender to confirm that.
        self.handshake(device.id, key, "absent")
        asked = self.send("payroll below the thread's label", recipient.id, "payroll", 409)
        if label(asked.outcome) != "confirmation_required" or not isinstance(
            asked.confirmation_token, str
        ):
            raise SystemExit(
                f"expected confirmation_required with a token, got {label(asked.outcome)}"
            )
        print(f"payroll {asked.id}: {label(asked.outcome)}")
        # A lost token is replaced by a new one (the old one stops working).
        renewed = new_confirmation_token.sync_detailed(asked.id, client=self.client)
        token = self.answer("a new confirmation token", renewed, 200, ConfirmationTokenAnswer)
        confirmed = self.answer(
            "confirm",
            confirm_message.sync_detailed(
                asked.id, client=self.client, body=ConfirmRequest(token=token.confirmation_token)
            ),
            202,
            SendAnswer,
        )
        print(f"payroll {confirmed.id}: confirmed, {label(confirmed.status)}")

        normal = self.send("transactional", recipient.id, "transactional", 202)
        print(f"transactional {normal.id}: {label(normal.outcome)}")
        status = self.wait_past_queued(normal.id)
        print(f"transactional {normal.id}: {label(status)}")
        self.answer(
            "status of the confirmed message",
            get_message.sync_detailed(confirmed.id, client=self.client),
            200,
            Message,
        )
        self.reads(recipient, first, normal)
        if self.admin is not None:
            self.operate(first, confirmed)
        revoked = revoke_message.sync_detailed(normal.id, client=self.client)
        self.answer("revoke", revoked, 200, MessageRevoked)

    def reads(self, recipient: Recipient, first: SendAnswer, normal: SendAnswer) -> None:
        """The sender's reads of what the run made, each checked like the rest."""
        c = self.client
        self.answer(
            "recipient", get_recipient.sync_detailed(recipient.id, client=c), 200, RecipientView
        )
        listed = list_recipients.sync_detailed(client=c, external_id=recipient.external_id)
        self.answer("recipients by external id", listed, 200, Recipients)
        messages = list_messages.sync_detailed(client=c, recipient_id=recipient.id)
        page = self.answer("messages of the recipient", messages, 200, Messages)
        if len(page.messages) != 3:
            raise SystemExit(f"the recipient has {len(page.messages)} messages listed, expected 3")
        self.answer("thread", get_thread.sync_detailed(first.thread, client=c), 200, Thread)
        self.answer("threads", list_threads.sync_detailed(client=c), 200, Threads)
        explained = explain_message.sync_detailed(first.id, client=c)
        if int(explained.status_code) != 200 or not isinstance(explained.parsed, str):
            raise SystemExit(f"explain: answered {int(explained.status_code)}")
        deliveries = sandbox_deliveries.sync_detailed(client=c, message=normal.id)
        self.answer("sandbox deliveries", deliveries, 200, SandboxDeliveries)
        self.answer("policy", get_policy.sync_detailed(client=c), 200, PolicyInfo)
        versions = list_policy_versions.sync_detailed(client=c)
        self.answer("policy versions", versions, 200, Versions)
        self.answer("health", healthz.sync_detailed(client=self.public), 200, Health)
        source = get_policy_version.sync_detailed(4, client=c)
        self.answer("policy version", source, 200, PolicyVersionSource)
        self.answer("stats", get_stats.sync_detailed(client=c), 200, Dashboard)
        by_class = get_class_stats.sync_detailed("payroll", client=c)
        self.answer("class stats", by_class, 200, Dashboard)
        queue = list_escalations.sync_detailed(client=c)
        self.answer("escalations", queue, 200, Escalations)
        # Refusals: the one error envelope.
        missing = get_message.sync_detailed("msg_00000000000000000000000000000000", client=c)
        self.answer("an unknown message", missing, 404, Error)
        unknown = self.send_as("an unknown class", recipient.id, "no_such_class", 422)
        if not isinstance(unknown, Error) or unknown.error.code != "unknown_class":
            raise SystemExit(f"an unknown class: expected the `unknown_class` error, got {unknown}")
        self.answer("readiness", readyz.sync_detailed(client=self.public), 200, Readiness)

    def operate(self, first: SendAnswer, confirmed: SendAnswer) -> None:
        """The admin's calls: the audit log and its proofs, an override's life."""
        a = self.admin
        assert a is not None
        entries = read_audit.sync_detailed(client=a, message=confirmed.id)
        self.answer("audit entries of a message", entries, 200, AuditPage)
        self.answer(
            "checkpoint now", checkpoint_now.sync_detailed(client=a), (200, 201), CheckpointAnswer
        )
        self.answer("checkpoints", list_checkpoints.sync_detailed(client=a), 200, CheckpointList)
        log = self.answer("audit log", audit_log.sync_detailed(client=a), 200, AuditLog)
        if log.tree.size > 1:
            grown = consistency_proof.sync_detailed(client=a, from_=1, to=log.tree.size)
            self.answer("consistency proof", grown, 200, ConsistencyProof)
        note = latest_checkpoint.sync_detailed(client=a)
        if int(note.status_code) != 200 or not isinstance(note.parsed, str):
            raise SystemExit(f"checkpoint note: answered {int(note.status_code)}")
        proof = inclusion_proof.sync_detailed(client=a, index=first.audit_index)
        self.answer("inclusion proof of a decision", proof, 200, InclusionProof)

        override = OverrideRequest.from_dict(
            {
                "id": f"smoke-{uuid.uuid4().hex[:8]}",
                "channel": "rcs",
                "os": "android",
                "effect": "distrust_e2ee",
                "reason": "smoke test",
                "expires_in": "1h",
            }
        )
        self.answer(
            "set override", set_override.sync_detailed(client=a, body=override), 201, OverrideSet
        )
        self.answer("overrides", list_overrides.sync_detailed(client=a), 200, OverrideList)
        renewed = renew_override.sync_detailed(
            override.id, client=a, body=RenewOverrideBody.from_dict({"expires_in": "2h"})
        )
        self.answer("renew override", renewed, 200, OverrideSet)
        cleared = clear_override.sync_detailed(override.id, client=a)
        self.answer("clear override", cleared, 200, OverrideSet)

        # A payroll notice to someone with an e-mail address alone is
        # escalated (its portal code could only go to the notice's inbox);
        # the operator blocks it.
        lone = self.answer(
            "register an e-mail-only recipient",
            register_recipient.sync_detailed(
                client=self.client,
                body=NewRecipient(
                    external_id=f"smoke-mail-{uuid.uuid4().hex[:8]}", email="m@example.com"
                ),
            ),
            201,
            Recipient,
        )
        escalated = self.send("payroll to an e-mail address alone", lone.id, "payroll", 202)
        if label(escalated.outcome) != "escalate":
            raise SystemExit(f"expected escalate, got {label(escalated.outcome)}")
        queue = list_escalations.sync_detailed(client=a, kind="escalated")
        page = self.answer("escalated messages", queue, 200, Escalations)
        if escalated.id not in [item.id for item in page.escalations]:
            raise SystemExit(f"{escalated.id} is not in the escalation queue")
        blocked = block_escalation.sync_detailed(
            escalated.id, client=a, body=BlockEscalationBody(reason="smoke test")
        )
        self.answer("block an escalated message", blocked, 200, QueueAction)

    def wait_past_queued(self, id_: str) -> str:
        deadline = time.monotonic() + STATUS_WAIT_S
        while True:
            message = self.answer(
                "message status", get_message.sync_detailed(id_, client=self.client), 200, Message
            )
            if message.status != "queued":
                return message.status
            if time.monotonic() > deadline:
                raise SystemExit(f"message {id_} still queued after {STATUS_WAIT_S:.0f} s")
            time.sleep(0.1)


def label(value: Any) -> str:
    """A generated enum's wire text, or the text itself (string fields)."""
    return str(getattr(value, "value", value))


def differences(sent: Any, kept: Any, at: str) -> list[str]:
    """Where the server's JSON `sent` and the model's `to_dict()` differ."""
    if isinstance(sent, dict) and isinstance(kept, dict):
        out = []
        for k in sorted(set(sent) | set(kept)):
            here = f"{at}/{k}"
            if k not in kept:
                out.append(f"`{here}` is in the answer but not in the document")
            elif k not in sent:
                out.append(f"`{here}` is in the model but not in the answer")
            else:
                out.extend(differences(sent[k], kept[k], here))
        return out
    if isinstance(sent, list) and isinstance(kept, list) and len(sent) == len(kept):
        return [
            d for i, (s, k) in enumerate(zip(sent, kept)) for d in differences(s, k, f"{at}/{i}")
        ]
    if sent != kept:
        return [f"`{at or '/'}` reads back as {type(kept).__name__}, was {type(sent).__name__}"]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the server's address, http://host:port")
    args = parser.parse_args()
    key = os.environ.get("LADDER_SMOKE_KEY")
    if not key:
        print("LADDER_SMOKE_KEY (a sender API key) is not set", file=sys.stderr)
        return 2
    smoke = Smoke(args.base, key, os.environ.get("LADDER_SMOKE_ADMIN_KEY"))
    smoke.run()
    # One generic de-duplication: the polling loop repeats its answers.
    found = list(dict.fromkeys(smoke.mismatches))
    for m in found:
        print(f"MISMATCH {m}", file=sys.stderr)
    print(f"smoke: {len(found)} mismatches between the document and the answers")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

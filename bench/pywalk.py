#!/usr/bin/env python3
"""Python baseline for the throughput benchmark (make bench, P1).

Parses an mbox with the standard library only: mailbox.mbox splits it,
email (policy compat32, the default of mailbox) parses each message, and
every leaf part is decoded: its Content-Transfer-Encoding with
get_payload(decode=True), then, for text/* parts, its charset. The header
fields are decoded as a mail client shows them (RFC 2047). Nothing is
kept. Prints one line:

    bytes=N messages=N parts=N decoded_bytes=N errors=N seconds=S mb_per_s=X
"""
import email.header
import mailbox
import os
import sys
import time


def text_of(payload, charset):
    try:
        return payload.decode(charset or "us-ascii", "replace")
    except LookupError:
        return payload.decode("latin-1", "replace")


def main():
    if len(sys.argv) != 2:
        print("usage: pywalk.py FILE.mbox", file=sys.stderr)
        return 2
    path = sys.argv[1]
    start = time.monotonic()
    size = os.path.getsize(path)
    messages = parts = decoded = errors = 0
    box = mailbox.mbox(path, create=False)
    try:
        for msg in box:  # mailboxMessage, parsed with email.message_from_binary_file (compat32)
            messages += 1
            for _, value in msg.items():
                try:
                    for raw, cs in email.header.decode_header(value):
                        if isinstance(raw, bytes):
                            text_of(raw, cs)
                except Exception:
                    errors += 1
            for part in msg.walk():
                if part.is_multipart():
                    continue
                parts += 1
                try:
                    payload = part.get_payload(decode=True) or b""
                    if part.get_content_maintype() == "text":
                        decoded += len(text_of(payload, part.get_content_charset()).encode("utf-8"))
                    else:
                        decoded += len(payload)
                except Exception:
                    errors += 1
    finally:
        box.close()
    secs = time.monotonic() - start
    print("bytes=%d messages=%d parts=%d decoded_bytes=%d errors=%d seconds=%.3f mb_per_s=%.1f"
          % (size, messages, parts, decoded, errors, secs, size / 1e6 / secs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

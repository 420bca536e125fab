"""Requests through the load balancer until a flag file disappears; prints how many failed.

    python3 load.py URL CA_FILE TOKEN_FILE FLAG_FILE

One keep-alive HTTPS connection (reopened after an error), GET URL in a loop. Every answer other
than 200, and every connection error or timeout, counts as a failed request. Prints one JSON line:
{"requests": N, "failed": M, "errors": [first few reasons]}.
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit


def main() -> int:
    url, ca_file, token_file, flag_file = sys.argv[1:5]
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    headers = {"Authorization": f"Bearer {Path(token_file).read_text().strip()}"}
    flag = Path(flag_file)
    requests = failed = 0
    errors: list[str] = []
    connection: http.client.HTTPSConnection | None = None
    while flag.exists():
        if connection is None:
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=10)
        requests += 1
        try:
            connection.request("GET", parts.path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failed += 1
                errors.append(f"HTTP {response.status}")
        except (OSError, http.client.HTTPException) as error:
            failed += 1
            errors.append(f"{type(error).__name__}: {error}")
            connection.close()
            connection = None
            time.sleep(0.05)
    print(json.dumps({"requests": requests, "failed": failed, "errors": errors[:5]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

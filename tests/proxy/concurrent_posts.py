# SPDX-License-Identifier: Apache-2.0
"""POST a Messages body COUNT times at once, round-robin over the gateways.

  concurrent_posts.py COUNT TOKEN BODY BASE [BASE...]

Prints each request's HTTP status (or error:WHY) on its own line, in request
order. Used by the quota tests of several gateways on one store.
"""
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

count, token, body, bases = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), sys.argv[4:]


def one(i):
    req = urllib.request.Request(bases[i % len(bases)] + "/v1/messages", data=body, method="POST",
                                 headers={"x-api-key": token, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:  # noqa: BLE001 (reported as a status the caller rejects)
        return "error:%s" % e


with ThreadPoolExecutor(max_workers=count) as pool:
    for status in pool.map(one, range(count)):
        print(status)

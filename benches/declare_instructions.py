"""Signs in on a running server (development sign-in) and declares N incidents through the form,
one after another. Used by declare_instructions.sh; standard library only."""

import http.cookiejar
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

base, count = sys.argv[1], int(sys.argv[2])


class KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(
    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), KeepRedirects
)


def get(path):
    return opener.open(base + path, timeout=300).read().decode()


def post(path, fields):
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(base + path, data=body, headers={"Origin": base})
    try:
        return opener.open(request, timeout=300).status
    except urllib.error.HTTPError as answer:
        return answer.code


def csrf(html):
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


deadline = time.time() + 300
while True:
    try:
        get("/readyz")
        break
    except (OSError, urllib.error.URLError):
        if time.time() > deadline:
            sys.exit("the server did not become ready")
        time.sleep(0.5)

status = post("/identify", {"csrf": csrf(get("/identify")), "next": "/", "name": "Bench Mark", "email": "bench@example.com"})
assert status == 303, f"sign-in answered {status}"
token = csrf(get("/declare"))
started = time.time()
for i in range(count):
    fields = {
        "csrf": token,
        "idempotency_key": str(uuid.uuid4()),
        "title": f"Instruction count {i}",
        "severity": "SEV2",
        "services": "checkout",
        "summary": "Bench **load**",
    }
    status = post("/declare", fields)
    assert status == 303, f"declare answered {status}"
print(f"declared {count} in {time.time() - started:.1f} s (under valgrind)")

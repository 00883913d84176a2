#!/usr/bin/env python3
"""Writes N lines of nginx `combined` access log to stdout, deterministically (seeded).

Used by bench/ingest-vs-lnav.sh: realistic field widths (IPv4, paths with queries, browser user
agents) so that a 3,000,000-line file is about 520 MB uncompressed, like the issue's reference file.
"""
import random, sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
rng = random.Random(20250206)
paths = ["/", "/index.html", "/app/admin", "/api/ping", "/api/orders", "/static/css/site.css", "/static/js/app.js",
         "/images/logo.png", "/wp-login.php", "/.env", "/api/items", "/search", "/app/settings", "/favicon.ico"]
agents = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0",
    "curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
]
statuses = [200] * 80 + [304] * 6 + [404] * 6 + [403] * 3 + [500, 502, 301, 302, 400]
months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
out = sys.stdout
t = 1738800000  # 2025-02-06 00:00 UTC
buf = []
for i in range(n):
    t += rng.random() * 0.02
    sec = int(t)
    import time as _t
    g = _t.gmtime(sec + 9 * 3600)
    stamp = "%02d/%s/%04d:%02d:%02d:%02d +0900" % (g.tm_mday, months[g.tm_mon - 1], g.tm_year, g.tm_hour, g.tm_min, g.tm_sec)
    ip = "%d.%d.%d.%d" % (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
    path = rng.choice(paths)
    if rng.random() < 0.4:
        path += "?id=%d&session=%08x&lang=en" % (rng.randint(1, 999999), rng.getrandbits(32))
    ref = "-" if rng.random() < 0.5 else "https://www.example.com/page/%d" % rng.randint(1, 5000)
    buf.append('%s - - [%s] "GET %s HTTP/1.1" %d %d "%s" "%s"\n' % (ip, stamp, path, rng.choice(statuses),
                                                                  rng.randint(0, 60000), ref, rng.choice(agents)))
    if len(buf) >= 10000:
        out.write("".join(buf)); buf = []
out.write("".join(buf))

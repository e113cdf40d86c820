"""Screenshots of the console's main pages for the docs: seed a store, serve Keel with
the console, sign in with headless Chromium and save 1280x800 PNGs.

    python -m bench.console_screens                  # into docs/screenshots/
    python -m bench.console_screens --requests 100000 --out /tmp/shots
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.console import serve, settings_for
from bench.console_seed import seed, seed_drift, seed_eval_run, seed_feedback

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="keel-screens-"))
    app, server, thread, url = serve(settings_for(home, f"sqlite:///{home / 'keel.db'}"))
    try:
        seeded = seed(app.engine, args.requests, days=30)
        run_id = seed_eval_run(app.engine)
        seed_drift(app.engine, seeded.now)
        seed_feedback(app.engine, seeded)
        app.keys.reload()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{url}/login")
            page.screenshot(path=str(args.out / "console-login.png"))
            page.fill("#key", seeded.admin_key)
            page.click("button[type=submit]")
            page.wait_for_selector("h1")
            request_id = re.search(
                r'data-request-id="([^"]+)"', page.goto(f"{url}/requests?range=24h&guard=redact").text()
            )
            shots = {
                "console-overview.png": f"{url}/overview?range=7d",
                "console-cost.png": f"{url}/cost?range=30d",
                "console-requests.png": f"{url}/requests?range=24h",
                "console-prompt.png": f"{url}/prompts/faq-answer?range=30d",
                "console-keys.png": f"{url}/access",
                "console-eval-run.png": f"{url}/evals/{run_id}",
                "console-drift.png": f"{url}/drift?range=24h",
                "console-feedback.png": f"{url}/feedback?range=7d",
            }
            if request_id:
                shots["console-request.png"] = f"{url}/requests/{request_id.group(1)}"
            for name, target in shots.items():
                page.goto(target)
                page.wait_for_selector("h1")
                page.screenshot(path=str(args.out / name))
                print(f"wrote {args.out / name}")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.engine.dispose()


if __name__ == "__main__":
    main()

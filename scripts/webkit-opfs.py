#!/usr/bin/python3
"""Runs one wasm-bindgen-test suite page in WebKitGTK with WebKit's real OPFS switched on.

Why not WebKitWebDriver: an automation session is ephemeral (like Safari's Private Browsing),
and WebKit refuses `navigator.storage.getDirectory()` there ("transient reason"). This is a
small browser of its own instead: a WebKitGTK view with a *persistent* data directory and the
feature flags that WebKitGTK ships switched off (FileSystem, AccessHandle,
FileSystemWritableStream, StorageAPI, StorageAPIEstimate), pointed at the test runner's
interactive server (`NO_HEADLESS=1 WASM_BINDGEN_TEST_ADDRESS=...`). It prints what the runner
writes into the page's `#output` element as it grows, and exits when the runner's
`test result:` line appears.

Exit codes: 0 the suite finished (its result line says how), 2 timed out, 3 the web process
died, 4 the page did not load, 5 a feature flag this WebKit does not know.
Needs Debian's python3-gi and gir1.2-webkit2-4.1, and a display (xvfb-run).
"""
import argparse
import re
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import GLib, Gtk, WebKit2  # noqa: E402

FEATURES = "FileSystem,AccessHandle,FileSystemWritableStream,StorageAPI,StorageAPIEstimate"
READ_OUTPUT = "(() => { const e = document.getElementById('output'); return e ? e.textContent : ''; })()"
DONE = re.compile(r"^test result:", re.M)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--data-dir", required=True, help="persistent website data (OPFS, IndexedDB) go here")
    ap.add_argument("--timeout", type=float, default=600, help="seconds for the whole suite")
    ap.add_argument("--features", default=FEATURES, help="comma-separated WebKit feature identifiers to switch on")
    ap.add_argument("--poll-ms", type=int, default=250)
    args = ap.parse_args()

    manager = WebKit2.WebsiteDataManager(
        base_data_directory=f"{args.data_dir}/data", base_cache_directory=f"{args.data_dir}/cache"
    )
    context = WebKit2.WebContext.new_with_website_data_manager(manager)
    settings = WebKit2.Settings()
    wanted = {f for f in args.features.split(",") if f}
    known = WebKit2.Settings.get_all_features()
    for i in range(known.get_length()):
        feature = known.get(i)
        if feature.get_identifier() in wanted:
            settings.set_feature_enabled(feature, True)
            wanted.discard(feature.get_identifier())
    if wanted:
        print(f"DRIVER: this WebKit has no feature named {', '.join(sorted(wanted))}", flush=True)
        sys.exit(5)

    view = WebKit2.WebView(web_context=context, settings=settings)
    window = Gtk.Window()
    window.set_default_size(800, 600)
    window.add(view)
    window.show_all()

    state = {"text": "", "code": None}

    def finish(code, why=None):
        if state["code"] is None:
            state["code"] = code
            if why:
                print(f"DRIVER: {why}", flush=True)
            Gtk.main_quit()
        return False

    def on_output(view, result):
        try:
            text = view.evaluate_javascript_finish(result).to_string()
        except GLib.Error:
            return  # the page is between loads; the next poll reads it
        old = state["text"]
        if text.startswith(old):
            sys.stdout.write(text[len(old):])
        else:  # the runner replaced its "Loading..." line
            sys.stdout.write("\n" + text)
        sys.stdout.flush()
        state["text"] = text
        if DONE.search(text):
            finish(0)

    def poll():
        if state["code"] is not None:
            return False
        view.evaluate_javascript(READ_OUTPUT, -1, None, None, None, on_output)
        return True

    def on_crash(view, reason):
        finish(3, f"the web process terminated ({reason.value_nick})")

    def on_load_failed(view, event, uri, error):
        finish(4, f"loading {uri} failed: {error.message}")
        return True

    view.connect("web-process-terminated", on_crash)
    view.connect("load-failed", on_load_failed)
    GLib.timeout_add(args.poll_ms, poll)
    GLib.timeout_add(int(args.timeout * 1000), lambda: finish(2, f"timed out after {args.timeout:g} s"))
    view.load_uri(args.url)
    Gtk.main()
    sys.exit(state["code"])


if __name__ == "__main__":
    main()

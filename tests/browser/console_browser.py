#!/usr/bin/python3
"""The console in a real browser: Debian's chromium, headless, driven by chromium-driver through
python3-selenium. Run by tests/integration/app/console_test.cpp once it has made sagas of every
outcome and dead letters; it asserts on what the page shows and saves a screenshot (PNG) of each
page into --out. Exit 0 when every step passed; otherwise the failing step on stderr, exit 1.

Steps: the overview (live counts), searching an order (o-fail) and its graph, the stuck saga
(o-stuck): re-send its due compensation through the confirmation dialog, the dead letters:
replay one (--dead-letter ID) through the dialog.
"""
import argparse
import os
import sys
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1400", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dead-letter", required=True, help="id of the dead letter to replay")
    ap.add_argument("--dead-letters", type=int, required=True, help="how many are listed")
    args = ap.parse_args()
    driver = browser()
    wait = WebDriverWait(driver, 20)
    step = "start"

    def text_of(css):
        return driver.find_element(By.CSS_SELECTOR, css).text

    def wait_text(css, text):
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def shot(name):
        driver.save_screenshot(os.path.join(args.out, name))
        print("screenshot", name, flush=True)

    def confirm():
        wait.until(EC.visibility_of_element_located((By.ID, "confirm")))
        driver.find_element(By.ID, "confirm-ok").click()

    try:
        step = "overview"
        driver.get(args.url + "/")
        wait_text("#card-stuck .n", "1")
        assert text_of("#card-confirmed .n") == "1", text_of("#card-confirmed .n")
        assert text_of("#card-failed .n") == "1", text_of("#card-failed .n")
        wait_text("#dead-by-reason", "unknown_saga")
        assert "malformed_json" in text_of("#dead-by-reason")
        assert text_of("#dead-total").startswith("%d " % args.dead_letters), text_of("#dead-total")
        shot("overview.png")

        step = "a state's list from the overview"
        driver.find_element(By.ID, "card-failed").click()
        wait_text("#sagas", "o-fail")
        assert "payment_failed" in text_of("#sagas")
        assert "o-ok" not in text_of("#sagas")

        step = "search an order and open its graph"
        box = driver.find_element(By.ID, "search-order")
        box.clear()
        box.send_keys("o-fail")
        driver.find_element(By.CSS_SELECTOR, "#search button").click()
        wait.until(EC.presence_of_element_located((By.ID, "saga-graph")))
        wait_text("#saga-state", "failed")
        assert text_of("#saga-reason") == "payment_failed"
        graph = driver.find_element(By.ID, "saga-graph")
        steps = graph.find_elements(By.CSS_SELECTOR, "rect[data-step]")
        assert [s.get_attribute("data-step") for s in steps] == ["inventory", "payment", "shipment"]
        assert [s.get_attribute("class") for s in steps] == ["compensated", "failed", "not_started"], \
            [s.get_attribute("class") for s in steps]
        release = graph.find_element(By.CSS_SELECTOR, 'rect[data-compensation="inventory.release"]')
        assert release.get_attribute("class") == "compensated"
        assert "order.created" in text_of("#timeline") and "payment.failed" in text_of("#timeline")
        assert "o-fail:inventory.reserve" in text_of("#commands")
        assert text_of("#order-total") == "1234567.89 EUR", text_of("#order-total")
        shot("saga-failed.png")

        step = "an unknown order"
        driver.get(args.url + "/#/saga/no-such-order")
        wait_text("#error", "no saga for order")

        step = "re-send the stuck saga's compensation"
        driver.get(args.url + "/#/saga/o-stuck")
        wait_text("#saga-state", "stuck")
        stuck = driver.find_element(By.CSS_SELECTOR, 'rect[data-compensation="inventory.release"]')
        assert stuck.get_attribute("class") == "stuck", stuck.get_attribute("class")
        assert "inventory.release" in text_of("#pending")
        shot("saga-stuck.png")
        driver.find_element(By.ID, "resend").click()
        wait_text("#confirm-text", "o-stuck:inventory.release")
        confirm()
        wait_text("#notice", "Re-sent inventory.release (id o-stuck:inventory.release)")
        shot("saga-stuck-resent.png")

        step = "replay one dead letter"
        driver.get(args.url + "/#/dead-letters")
        row = '#dead-letters tr[data-id="%s"]' % args.dead_letter
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, row)))
        assert "unknown_saga" in text_of(row)
        assert "o-ghost" in text_of(row)  # the body preview
        assert len(driver.find_elements(By.CSS_SELECTOR, "#dead-letters tr[data-id]")) == args.dead_letters
        shot("dead-letters.png")
        driver.find_element(By.CSS_SELECTOR, row + " button.replay-one").click()
        wait_text("#confirm-text", "this dead letter")
        confirm()
        wait_text("#notice", "Replayed 1 dead letter(s).")
        shot("dead-letters-replayed.png")

        step = "replay with nothing selected"
        driver.find_element(By.ID, "replay-selected").click()
        wait_text("#notice", "Select at least one dead letter")
    except Exception:  # noqa: BLE001 - report the step, whatever failed
        print("step failed: %s" % step, file=sys.stderr)
        traceback.print_exc()
        try:
            shot("failure.png")
            print(driver.find_element(By.TAG_NAME, "body").text, file=sys.stderr)
        except Exception:  # noqa: BLE001
            pass
        return 1
    finally:
        driver.quit()
    print("browser: every step passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

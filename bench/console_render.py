#!/usr/bin/python3
"""Time from navigation to the console overview's numbers on screen, in headless chromium.

usage: console_render.py URL [rounds=5]
Prints one line: the time of each round (a fresh page load each) and the median, measured in
the page as performance.now() when the stuck card shows a number (navigation start = 0).
"""
import os
import statistics
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def main():
    url = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    times = []
    try:
        for _ in range(rounds):
            driver.get("about:blank")
            driver.get(url)
            WebDriverWait(driver, 30, poll_frequency=0.01).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#card-stuck .n"))
            times.append(driver.execute_script("return performance.now()"))
    finally:
        driver.quit()
    print("browser render (navigation to overview numbers): %s ms; median %.0f ms"
          % (", ".join("%.0f" % t for t in times), statistics.median(times)))


if __name__ == "__main__":
    main()

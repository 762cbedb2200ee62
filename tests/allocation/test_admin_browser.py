"""A manager in a real browser: signs in to the admin, sees only their team's pending request,
approves it, and watches the balances move.

Headless Chromium from Debian's ``chromium`` and ``chromium-driver`` packages, driven by
Selenium against pytest-django's live server. ``.ci/run`` installs both; set ``BROWSER_TESTS=0``
to skip this module on a machine without them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from allocation.demo import DemoOrganization
from allocation.models import TransferRequest
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LIST = "/admin/allocation/transferrequest/"
WAIT_SECONDS = 20

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("BROWSER_TESTS") == "0",
        reason="browser tests turned off with BROWSER_TESTS=0",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium that never reaches past this machine: no Selenium Manager download,
    no background requests, a fresh profile each time."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1024",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(WAIT_SECONDS)
        try:
            yield driver
        finally:
            driver.quit()


@contextmanager
def screenshot_on_failure(driver: WebDriver, directory: Path) -> Iterator[None]:
    """Keep the page a failing step was looking at, and say where it is."""
    try:
        yield
    except BaseException:
        shot = directory / "failure.png"
        driver.save_screenshot(str(shot))
        print(f"screenshot of the page at the failure: {shot}")
        raise


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT_SECONDS)


def sign_in(driver: WebDriver, base_url: str, username: str) -> None:
    driver.get(f"{base_url}/admin/login/?next={LIST}")
    wait(driver).until(ec.visibility_of_element_located((By.ID, "id_username")))
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(driver).until(ec.url_contains(LIST))
    wait(driver).until(ec.presence_of_element_located((By.ID, "result_list")))


def listed_change_links(driver: WebDriver) -> set[str]:
    """The change-page paths linked from the changelist's result table."""
    links = driver.find_elements(By.CSS_SELECTOR, "#result_list a[href*='/change/']")
    return {link.get_attribute("href") or "" for link in links}


def links_to(links: set[str], request: TransferRequest) -> bool:
    return any(href.endswith(f"{LIST}{request.pk}/change/") for href in links)


def balances(driver: WebDriver) -> tuple[str, str]:
    source = driver.find_element(By.CSS_SELECTOR, "#pool-balances [data-pool='source']")
    target = driver.find_element(By.CSS_SELECTOR, "#pool-balances [data-pool='target']")
    return source.text, target.text


def test_manager_approves_their_teams_request_in_the_browser(
    acme: DemoOrganization, live_server: LiveServer, browser: WebDriver, tmp_path: Path
) -> None:
    with screenshot_on_failure(browser, tmp_path):
        approve_in_the_browser(acme, live_server.url, browser)


def approve_in_the_browser(acme: DemoOrganization, base_url: str, browser: WebDriver) -> None:
    into_product, product_to_eng2, research_to_infra = acme.requests

    sign_in(browser, base_url, "acme-product-lead")
    browser.get(f"{base_url}{LIST}")
    wait(browser).until(ec.presence_of_element_located((By.ID, "result_list")))
    links = listed_change_links(browser)

    assert links_to(links, product_to_eng2)
    assert links_to(links, into_product)
    assert not links_to(links, research_to_infra)

    browser.get(f"{base_url}{LIST}{product_to_eng2.pk}/change/")
    wait(browser).until(ec.presence_of_element_located((By.ID, "pool-balances")))
    before = balances(browser)
    approve = browser.find_element(By.ID, "approve-button")
    # The button must submit its own form to .../approve/, not the admin's change form around it.
    action = browser.execute_script("return arguments[0].form.action;", approve)
    assert str(action).endswith(f"{LIST}{product_to_eng2.pk}/approve/"), (
        f"#approve-button submits to {action}: is its <form> nested in the change form?"
    )
    approve.click()
    wait(browser).until(ec.staleness_of(approve))
    success = wait(browser).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success"))
    )
    after = balances(browser)

    assert before == ("17000.000000 USD", "1000.000000 USD")
    assert "approved and executed" in success.text
    assert after == ("16700.000000 USD", "1300.000000 USD")
    assert TransferRequest.objects.get(pk=product_to_eng2.pk).status == "executed"

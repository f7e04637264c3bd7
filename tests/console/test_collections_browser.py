"""The collections pages in headless Chromium over a real stack with the index process.

Saves ``collections.png`` beside the other pages' screenshots (``docs/console/`` when
``HOOKLINE_SCREENSHOTS_DIR=docs/console``).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.console.browser import Console, api, create_key
from tests.procs import Stack, wait_until

ROWS, DIMENSION = 24, 16


def test_a_collection_shows_its_count_and_searches_by_a_stored_id(
    make_stack: Callable[..., Stack], driver: webdriver.Chrome,
) -> None:
    stack = make_stack()
    stack.start_index()
    stack.start()
    key = create_key(stack, "acme")
    call = api(stack, key)
    # Given a collection and a job that indexed vectors into it, with ids of its own
    assert call("POST", "/collections", json={"name": "docs", "dimension": DIMENSION}).status_code == 201
    rows = np.random.default_rng(5).normal(size=(ROWS, DIMENSION))
    ids = [f"doc-{n}" for n in range(ROWS)]
    ids[7] = "<i>doc-7</i>"
    resp = call("POST", "/tasks", json={"vector_data": rows.tolist(), "ids": ids, "collection": "docs"})
    assert resp.status_code == 202, resp.text
    task_id = resp.json()["task_id"]
    wait_until(lambda: call("GET", f"/tasks/{task_id}").json()["status"] == "SUCCESS", 60,
               "the job succeeds")

    # When the tenant opens the collections page, then it shows the count
    console = Console(driver, stack.url)
    console.sign_in(key)
    console.click(".bar nav a[href='/console/collections']")
    row = "#collections tr[data-collection='acme/docs']"
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, row), 10, "the collection is listed")
    assert console.text(f"{row} .count") == str(ROWS)

    # And its page searches by a stored vector's id: that vector first, with score ~1
    console.click(f"{row} a")
    assert console.text("#count") == str(ROWS) and console.text("#dimension") == str(DIMENSION)
    driver.find_element(By.ID, "vector-id").send_keys("doc-3")
    k = driver.find_element(By.ID, "k")
    k.clear()
    k.send_keys("5")
    console.click("#search")
    hits = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#hits tbody tr"), 10,
                      "the hits show")
    assert len(hits) == 5
    first = hits[0].find_elements(By.TAG_NAME, "td")
    assert first[1].text == "doc-3" and abs(float(first[2].text) - 1.0) < 1e-4
    assert all(float(h.find_elements(By.TAG_NAME, "td")[2].text) < 0.9999 for h in hits[1:])
    expected = call("POST", "/collections/docs/search", json={"vector": rows[3].tolist(), "k": 5}).json()
    assert [h.find_elements(By.TAG_NAME, "td")[1].text for h in hits] == [h["id"] for h in expected["items"]]
    console.shot("collections")

    # An id holding markup is shown as text, and each hit links to its task's page
    search = driver.find_element(By.ID, "vector-id")
    search.clear()
    search.send_keys("<i>doc-7</i>")
    console.click("#search")
    wait_until(lambda: "<i>doc-7</i>" in console.text("#hits tbody tr"), 10, "the marked-up id shows")
    assert not driver.find_elements(By.CSS_SELECTOR, "#hits i")
    console.click("#hits tbody tr a")
    wait_until(lambda: task_id in console.text("h1"), 10, "the task's page opens")
    assert console.text("#task-status") == "SUCCESS"

    # Another tenant reaching this collection by its URL gets a 404
    console.sign_out()
    console.sign_in(create_key(stack, "umbrella"))
    console.open("/console/collections/acme/docs")
    assert "404" in console.text("h1") and "doc-3" not in driver.page_source
    console.open("/console/collections")
    assert "docs" not in console.text("#collections")

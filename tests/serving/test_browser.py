"""The demo page of `koner serve` and the HTML file of `koner ner --format html`, in a real headless Chromium
(Debian's chromium and chromium-driver, driven by Selenium) against a real server process on loopback."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from support.extras import needs

webdriver = needs("selenium.webdriver")
needs("uvicorn")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from koner import NER  # noqa: E402
from support.serve_process import Server  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                                                                  "(apt-get install chromium chromium-driver)")
TEXT = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다."
ATTACK = '<img src=x onerror="window.__pwned=1;document.title=\'pwned\'"><script>window.__pwned=2</script> 아이유 노래 검색해줘.'


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not look for drivers on the network
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1100,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def ner():
    return NER.load()


def _marks(driver):
    """(label, text) of every highlighted span in the result (the label chip left out)."""
    return [tuple(x) for x in driver.execute_script(
        "return Array.from(document.querySelectorAll('#result mark'))"
        ".map(m => [m.dataset.label, m.firstChild.textContent]);")]


def _submit(driver, text, key=None):
    box = driver.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    if key is not None:
        field = driver.find_element(By.ID, "key")
        field.clear()
        field.send_keys(key)
    driver.execute_script("document.getElementById('status').removeAttribute('data-status');")
    driver.find_element(By.ID, "run").click()
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.ID, "status").get_attribute("data-status") not in (None, ""))
    return driver.find_element(By.ID, "status").get_attribute("data-status")


def test_the_page_shows_exactly_the_libraries_entities(browser, ner):
    s = Server()
    try:
        browser.get(s.url + "/")
        assert browser.title.startswith("koner")
        assert _submit(browser, TEXT) == "200"
        want = [(e.label, e.text) for e in ner(TEXT)]
        assert len(want) >= 3 and _marks(browser) == want
        assert browser.find_element(By.ID, "result").text.replace("\n", "").startswith("어제")
        shown = json.loads(browser.find_element(By.ID, "json").get_attribute("textContent"))
        assert [(e["entity_group"], e["text"]) for e in shown["entities"]] == want
        # another aggregation and the decoder go with the request
        browser.find_element(By.CSS_SELECTOR, "#aggregation option[value='first']").click()
        assert _submit(browser, "서울역으로 안내해줘.") == "200"
        assert _marks(browser) == [(e.label, e.text) for e in ner("서울역으로 안내해줘.", aggregation="first")]
        browser.find_element(By.CSS_SELECTOR, "#aggregation option[value='simple']").click()
        shot = os.environ.get("KONER_DEMO_SCREENSHOT")  # docs/images/demo-page.png is made this way
        if shot:
            _submit(browser, TEXT)
            browser.save_screenshot(shot)
    finally:
        s.stop()


def test_markup_in_the_input_is_shown_never_run(browser, ner):
    s = Server()
    try:
        browser.get(s.url + "/")
        assert _submit(browser, ATTACK) == "200"
        assert browser.execute_script("return window.__pwned === undefined")
        assert browser.title != "pwned"
        assert browser.find_elements(By.CSS_SELECTOR, "#result img, #result script") == []
        text = browser.execute_script("return Array.from(document.querySelector('#result').childNodes)"
                                      ".map(n => n.nodeType === 3 ? n.textContent : n.firstChild.textContent).join('')")
        assert text == ATTACK  # the input, character for character
        assert _marks(browser) == [(e.label, e.text) for e in ner(ATTACK)]
    finally:
        s.stop()


def test_with_an_api_key_the_page_reports_401_until_the_key_is_given(browser, ner):
    s = Server(env={"KONER_API_KEY": "s3cret-key"})
    try:
        browser.get(s.url + "/")  # the page itself needs no key
        assert browser.find_element(By.ID, "key-row").is_displayed()
        assert _submit(browser, TEXT) == "401"
        assert browser.find_element(By.ID, "status").text.startswith("401 unauthorized")
        assert _marks(browser) == []
        assert _submit(browser, TEXT, key="wrong") == "401"
        assert _submit(browser, TEXT, key="s3cret-key") == "200"
        assert _marks(browser) == [(e.label, e.text) for e in ner(TEXT)]
    finally:
        s.stop()


def test_no_ui_turns_the_page_off():
    s = Server("--no-ui")
    try:
        assert s.client.get("/").status_code == 405 and s.client.get("/ui.js").status_code == 404
        assert s.post("/", {"inputs": "아이유 노래 검색해줘."}).json()[0]["word"] == "아이유"  # the HF API stays
        assert "/ui.js" not in s.client.get("/openapi.json").json()["paths"]
    finally:
        s.stop()


def test_the_html_file_view_in_a_browser(browser, ner, tmp_path):
    lines = [TEXT, ATTACK, "", "에어컨 온도 3도 올려줘."]
    out = tmp_path / "view.html"
    res = subprocess.run([sys.executable, "-m", "koner.cli", "ner", "--format", "html", "--output", str(out)],
                         input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    browser.get(out.as_uri())
    assert browser.execute_script("return window.__pwned === undefined") and browser.title != "pwned"
    blocks = browser.execute_script(
        "return Array.from(document.querySelectorAll('.koner-text')).map(b => ["
        "Array.from(b.childNodes).filter(n => !(n.classList && n.classList.contains('koner-none')))"
        ".map(n => n.nodeType === 3 ? n.textContent : n.firstChild.textContent).join(''),"
        "Array.from(b.querySelectorAll('mark')).map(m => [m.dataset.label, m.firstChild.textContent])]);")
    assert [b[0] for b in blocks] == lines  # every text, in input order, as it was
    assert [[tuple(m) for m in b[1]] for b in blocks] == [[(e.label, e.text) for e in ner(t)] for t in lines]
    legend = browser.find_element(By.CLASS_NAME, "koner-legend").text
    assert "PS PERSON" in legend and "LC LOCATION" in legend and "OG ORGANIZATION" in legend
    assert browser.find_elements(By.CSS_SELECTOR, "img, script") == []

// The console's entry point: tabs (arrow keys move between them), the access token, and the two screens.
import { accessToken, setAccessToken } from "./connect.js";
import { setupCompare } from "./compare.js";
import { setupEligibility } from "./eligibility.js";

function setupTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const select = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    tab.focus();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) { event.preventDefault(); select(tabs[(i + step + tabs.length) % tabs.length]); }
      if (event.key === "Home") { event.preventDefault(); select(tabs[0]); }
      if (event.key === "End") { event.preventDefault(); select(tabs[tabs.length - 1]); }
    });
  });
}

function setupToken() {
  const input = document.getElementById("access-token");
  input.value = accessToken();
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setAccessToken(input.value.trim());
  });
  document.getElementById("token-clear").addEventListener("click", () => { input.value = ""; setAccessToken(""); });
}

setupTabs();
setupToken();
setupCompare();
setupEligibility();
document.body.dataset.ready = "true";

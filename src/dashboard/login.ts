/** The token login page: a form that, given the right token, sets the session cookie. */
import express, { Router } from "express";
import type { Access } from "./access.js";
import { html } from "./html.js";
import { pageShell } from "./page.js";

/** Only a path of this dashboard (never `//host`): the login cannot send anyone elsewhere. */
export function safeNext(next: unknown): string {
  return typeof next === "string" && /^\/(?![/\\])/.test(next) ? next : "/";
}

function loginPage(next: string, failed: boolean): string {
  return pageShell(
    "kie-batch: log in",
    html`<main class="login">
  <h1>kie-batch dashboard</h1>
  ${failed ? html`<p class="warning" role="alert">That is not the dashboard's token.</p>` : ""}
  <form method="post" action="/login">
    <input type="hidden" name="next" value="${next}">
    <label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
    <button type="submit">Log in</button>
  </form>
  <p class="muted">The token is the one the dashboard was started with (<code>--auth-token</code> or <code>KIE_DASHBOARD_TOKEN</code>).</p>
</main>`,
  );
}

export function loginRouter(access: Access, headers: Record<string, string>): Router {
  const router = Router();
  router.get("/login", (req, res) => {
    res
      .status(200)
      .set(headers)
      .type("html")
      .send(loginPage(safeNext(req.query.next), false));
  });
  router.post("/login", express.urlencoded({ extended: false, limit: "4kb" }), (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    const outcome = typeof body.token === "string" ? access.login(body.token, req, res) : { ok: false };
    if (outcome.ok) return void res.redirect(303, next);
    if ("retryAfterMs" in outcome && outcome.retryAfterMs !== undefined) {
      const seconds = Math.ceil(outcome.retryAfterMs / 1000);
      res
        .status(429)
        .set({ ...headers, "Retry-After": String(seconds) })
        .type("text")
        .send(`Too many failed logins from this address: try again in ${seconds} s.\n`);
      return;
    }
    res.status(401).set(headers).type("html").send(loginPage(next, true));
  });
  return router;
}

/**
 * The dashboard's login: a session cookie that ends by itself (12 hours, signed expiry), is
 * `Secure` over HTTPS, and an address that keeps sending wrong tokens is refused for a while.
 */
import type { Request, Response } from "express";
import { describe, expect, it } from "vitest";
import {
  createAccess,
  LOGIN_FAILURE_WINDOW_MS,
  MAX_LOGIN_FAILURES,
  SESSION_TTL_MS,
} from "../../src/dashboard/access.js";

const TOKEN = "a-dashboard-token-of-some-length";

function setup() {
  let now = Date.UTC(2026, 11, 7, 12);
  const access = createAccess({ token: TOKEN, now: () => now });
  const request = (options: { address?: string; cookie?: string; proto?: string } = {}) =>
    ({
      secure: false,
      socket: { remoteAddress: options.address ?? "203.0.113.7" },
      headers: {
        ...(options.cookie ? { cookie: options.cookie } : {}),
        ...(options.proto ? { "x-forwarded-proto": options.proto } : {}),
      },
    }) as unknown as Request;
  const cookies: { name: string; value: string; options: Record<string, unknown> }[] = [];
  const response = {
    cookie(name: string, value: string, options: Record<string, unknown>) {
      cookies.push({ name, value, options });
      return this;
    },
  } as unknown as Response;
  return {
    access,
    request,
    response,
    cookies,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("dashboard login", () => {
  it("sets an HttpOnly, SameSite=Strict session cookie for 12 hours; it holds until then, not after", () => {
    const f = setup();
    expect(f.access.login(TOKEN, f.request(), f.response)).toEqual({ ok: true });
    const [set] = f.cookies;
    expect(set?.options).toMatchObject({
      httpOnly: true,
      sameSite: "strict",
      maxAge: SESSION_TTL_MS,
      secure: false,
    });
    expect(set?.value).not.toContain(TOKEN);
    const cookie = `kie_dashboard=${set!.value}`;
    expect(f.access.who(f.request({ cookie }))).toBe("token");
    f.advance(SESSION_TTL_MS - 1_000);
    expect(f.access.who(f.request({ cookie }))).toBe("token");
    f.advance(2_000);
    expect(f.access.who(f.request({ cookie }))).toBeUndefined();
  });

  it("a cookie whose expiry was moved on, or that is not one, is refused", () => {
    const f = setup();
    f.access.login(TOKEN, f.request(), f.response);
    const value = f.cookies[0]!.value;
    const [expires, mac] = value.split(".");
    for (const forged of [`${Number(expires) + 86_400}.${mac}`, mac!, `x.${mac}`, `.${mac}`, "", TOKEN]) {
      expect(f.access.who(f.request({ cookie: `kie_dashboard=${forged}` })), forged).toBeUndefined();
    }
  });

  it("the cookie is Secure when the request came over HTTPS (to a proxy in front)", () => {
    const f = setup();
    f.access.login(TOKEN, f.request({ proto: "https" }), f.response);
    expect(f.cookies[0]?.options.secure).toBe(true);
  });

  it(`an address past ${MAX_LOGIN_FAILURES} wrong tokens is refused, even the right one, until its window passes; others are not`, () => {
    const f = setup();
    for (let i = 0; i < MAX_LOGIN_FAILURES; i++) {
      expect(f.access.login(`wrong-${i}`, f.request(), f.response)).toEqual({ ok: false });
      f.advance(1_000);
    }
    const refused = f.access.login(TOKEN, f.request(), f.response);
    expect(refused).toEqual({
      ok: false,
      retryAfterMs: LOGIN_FAILURE_WINDOW_MS - MAX_LOGIN_FAILURES * 1_000,
    });
    expect(f.cookies).toEqual([]);
    expect(f.access.login(TOKEN, f.request({ address: "198.51.100.1" }), f.response)).toEqual({ ok: true });
    // The oldest failure leaves the window: one more try is allowed.
    f.advance(LOGIN_FAILURE_WINDOW_MS - MAX_LOGIN_FAILURES * 1_000 + 1);
    expect(f.access.login(TOKEN, f.request(), f.response)).toEqual({ ok: true });
  });
});

import {
  MAX_FIXED_RESPONSE_BODY,
  backBy,
  maintenancePage,
} from '../../../lambda/shared/maintenance-page';

describe('maintenance page', () => {
  const page = maintenancePage(new Date('2026-11-22T04:07:30Z'));

  it('fits the ALB fixed-response limit of 1024 characters at any time of day', () => {
    for (let minute = 0; minute < 24 * 60; minute += 7) {
      const html = maintenancePage(new Date(Date.UTC(2026, 10, 22, 0, minute)));
      expect(html.length).toBeLessThanOrEqual(MAX_FIXED_RESPONSE_BODY);
    }
  });

  it('says what is happening and when to come back', () => {
    expect(page).toContain("We'll be right back");
    expect(page).toContain('upgrading our database');
    expect(page).toContain('Please try again after 04:07 UTC');
    expect(backBy(new Date('2026-11-22T23:59:59Z'))).toBe('23:59 UTC');
  });

  it('is one self-contained HTML document with inline CSS only', () => {
    expect(page.startsWith('<!doctype html><html lang="en">')).toBe(true);
    expect(page).toContain('<meta name="viewport" content="width=device-width,initial-scale=1">');
    expect(page).toContain('<meta charset="utf-8">');
    expect(page).toMatch(/<style>[^<]+<\/style>/);
    expect(page).toMatch(/<h1>[^<]+<\/h1>/);
    // Nothing to fetch: no scripts, stylesheets, images or links while the app is down.
    expect(page).not.toMatch(/<script|<link|<img|src=|href=|url\(/i);
  });

  it('reloads itself so people are back as soon as it is over', () => {
    expect(page).toContain('<meta http-equiv="refresh" content="30">');
  });
});

"""Steps the browser tests share."""

from tests.conftest import PASSWORD


def sign_in(page, live_server, user):
    """Sign ``user`` in on ``page`` through the sign-in form; the page ends on the home page."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill('input[name="username"]', user.username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{live_server.url}/")
    return page


def wheel_over_focused(page, field, typed):
    """Type ``typed`` in ``field``, wheel over it 3 notches; return (value, scrolled).

    ``scrolled`` is whether the page moved: the wheel should scroll it, not change the value.
    """
    field.fill(typed)
    field.scroll_into_view_if_needed()
    box = field.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    before = page.evaluate("window.scrollY")
    for _ in range(3):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(100)
    return field.input_value(), page.evaluate("window.scrollY") > before


RULES = """([top, bottom]) => {
    const found = [];
    for (const element of document.querySelectorAll(".wizard-form, .wizard-form *")) {
        if (!element.getClientRects().length) continue;
        const style = getComputedStyle(element);
        // A rule is a top or bottom border alone: boxes (inputs, buttons) have sides too.
        if (parseFloat(style.borderLeftWidth) || parseFloat(style.borderRightWidth)) continue;
        const box = element.getBoundingClientRect();
        for (const [side, y] of [["Top", box.top], ["Bottom", box.bottom]]) {
            const width = parseFloat(style[`border${side}Width`]);
            const color = style[`border${side}Color`];
            if (width > 0 && style[`border${side}Style`] !== "none" && !color.endsWith(", 0)")
                && y > top && y <= bottom) {
                found.push(Math.round(y));
            }
        }
    }
    return found.sort((a, b) => a - b);
}"""


def horizontal_rules(page, top, bottom):
    """Return the y of every horizontal rule drawn in the step's form below ``top``, to ``bottom``.

    A rule is an element's top or bottom border with no side borders (not an input's box).
    """
    return page.evaluate(RULES, [top, bottom])


SETTLED = """() => new Promise((done) => {
    // Bootstrap scrolls smoothly: wait until the page has not moved for five frames.
    let last = -1, same = 0;
    const tick = () => {
        same = window.scrollY === last ? same + 1 : 0;
        last = window.scrollY;
        if (same >= 5) done(); else requestAnimationFrame(tick);
    };
    tick();
})"""


def wait_for_scroll_to_settle(page):
    """Wait until a (smooth) scroll of the page has ended."""
    page.evaluate(SETTLED)

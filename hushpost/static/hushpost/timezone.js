// Times are shown in the zone this browser is set to, unless the account chose
// one: the server reads this cookie on the next page and checks the name
// against its own list of zones (hushpost/lib/zones.py).
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) { return; }
  var cookie = "hushpost_tz=" + zone;  // the pattern above leaves nothing to escape
  if (document.cookie.split("; ").indexOf(cookie) !== -1) { return; }
  document.cookie = cookie + "; path=/; max-age=31536000; SameSite=Lax" +
    (location.protocol === "https:" ? "; Secure" : "");
})();

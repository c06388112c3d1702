// The login the map, the dashboard and the leader's desk share: the tokens kept in
// sessionStorage, a refresh on a 401, the login form (#login-form, #login-error) and the
// logout button (#logout). wzSession(start) wires them; session.begin() starts at once when
// a login is kept; session.token() is the access token for requests made elsewhere (tiles).
(function () {
  'use strict';

  window.wzSession = function (start) {
    var auth = JSON.parse(sessionStorage.getItem('wz.auth') || 'null');
    function $(id) { return document.getElementById(id); }

    function saveAuth(tokens) {
      auth = tokens;
      if (tokens) sessionStorage.setItem('wz.auth', JSON.stringify(tokens));
      else sessionStorage.removeItem('wz.auth');
    }

    function refresh() {
      return fetch('/api/v1/auth/refresh', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: auth.refresh_token })
      }).then(function (r) {
        if (!r.ok) return false;
        return r.json().then(function (t) { saveAuth(t); return true; });
      });
    }

    // fetch(path, opts) with the bearer token, refreshed and retried once on a 401.
    function api(path, opts, retried) {
      opts = opts || {};
      var headers = Object.assign({}, opts.headers || {});
      if (auth) headers.Authorization = 'Bearer ' + auth.access_token;
      return fetch(path, Object.assign({}, opts, { headers: headers })).then(function (r) {
        if (r.status === 401 && auth && !retried) {
          return refresh().then(function (ok) {
            if (ok) return api(path, opts, true);
            logout();
            throw new Error('登录已过期，请重新登录');
          });
        }
        return r;
      });
    }

    function json(r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body.error && body.error.message) || ('HTTP ' + r.status));
        return body;
      });
    }

    function logout() {
      if (auth) {
        fetch('/api/v1/auth/logout', {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: auth.refresh_token })
        });
      }
      saveAuth(null);
      location.reload();
    }

    $('login-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var form = new URLSearchParams(new FormData(ev.target));
      $('login-error').textContent = '';
      fetch('/api/v1/auth/token', { method: 'POST', body: form }).then(json).then(function (tokens) {
        saveAuth(tokens);
        start();
      }).catch(function (e) { $('login-error').textContent = '登录失败：' + e.message; });
    });
    $('logout').addEventListener('click', logout);

    return {
      api: api, json: json,
      token: function () { return auth && auth.access_token; },
      begin: function () { if (auth) start(); }
    };
  };
})();

// 五长网格 leader's desk (领导工作台): plain JS, no build step, nothing from outside this app.
// Three panels: today's duty leader (坐班接访), the hard cases I own (包案) and the overdue
// supervised tasks (督办). Every Chinese name of a state, unit or outcome comes from the
// API's *_name fields; every date is the county's (the API's `day`, WUZHANG_TIME_ZONE).
(function () {
  'use strict';

  var state = { me: null, config: null, today: null, duty: null, owned: [], tasks: [], loads: 0 };
  window.wzl = state; // for the browser test and for debugging from the console

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'class') node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c != null) node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  // A county calendar day ('2026-12-03', as the API gives it) for a person: 2026年12月03日 星期四.
  // Read as UTC and shown in UTC, so the browser's own zone cannot move it to another day.
  var WEEKDAYS = ['日', '一', '二', '三', '四', '五', '六'];
  function dayText(iso) {
    var d = new Date(iso + 'T00:00:00Z');
    return iso.slice(0, 4) + '年' + iso.slice(5, 7) + '月' + iso.slice(8, 10) + '日 星期' + WEEKDAYS[d.getUTCDay()];
  }

  function daysBetween(fromIso, toIso) {
    return Math.round((Date.parse(toIso + 'T00:00:00Z') - Date.parse(fromIso + 'T00:00:00Z')) / 86400000);
  }

  // --- HTTP with the bearer token, refreshed once on 401 (as on /map and /dashboard) --------

  // The login, the tokens and the API calls: app/static/common/session.js.
  var session = window.wzSession(start);
  var api = session.api, json = session.json;

  // --- start ------------------------------------------------------------------------------

  function start() {
    Promise.all([api('/api/v1/me').then(json), fetch('/map/config.json').then(json)]).then(function (r) {
      state.me = r[0]; state.config = r[1];
      $('who').textContent = state.me.name;
      $('place').textContent = state.config.county_name;
      $('login').hidden = true;
      $('app').hidden = false;
      return load();
    }).catch(function (e) {
      $('login').hidden = false;
      $('app').hidden = true;
      $('login-error').textContent = e.message;
    });
  }

  function load() {
    $('status').textContent = '正在加载……';
    return Promise.all([
      api('/api/v1/duty/today').then(json),
      api('/api/v1/me/owned?limit=200').then(json),
      api('/api/v1/tasks?state=overdue').then(json)
    ]).then(function (r) {
      state.today = r[0].day; state.duty = r[0].on_duty; state.owned = r[1].items; state.tasks = r[2].items;
      duty(r[0]);
      owned(r[1]);
      tasks(r[2].items);
      state.loads += 1;
      $('status').textContent = '本县今天是 ' + dayText(state.today);
    }).catch(function (e) { $('status').textContent = '加载失败：' + e.message; });
  }

  // --- today's duty leader ----------------------------------------------------------------

  function duty(today) {
    $('duty-day').textContent = dayText(today.day);
    var d = today.on_duty;
    $('duty-name').textContent = d ? d.leader_name : '今日无人坐班';
    $('duty-body').textContent = d ? d.body_name : '';
    $('duty-note').textContent = d ? (d.note || '') : '请信访局排好坐班表，来访登记需要当天的坐班领导。';
  }

  // --- the hard cases I own (包案) -----------------------------------------------------------

  function owned(page) {
    var body = $('owned').querySelector('tbody');
    body.textContent = '';
    $('owned-count').textContent = '（共 ' + page.items.length + (page.next_cursor ? '+' : '') + ' 件）';
    page.items.forEach(function (c) {
      var total = c.duties_total || 5;
      body.appendChild(el('tr', { 'data-case': c.id },
        el('td', null, String(c.id), c.overdue ? el('span', { class: 'tag', text: '超期' }) : null),
        el('td', { text: c.category_name }),
        el('td', { text: c.state_name }),
        el('td', { class: 'duties' }, el('progress', { max: total, value: c.duties_done }),
           el('span', { class: 'frac', text: c.duties_done + '/' + total })),
        el('td', { text: c.hard_outcome_name || '—' }),
        el('td', { text: c.owner_unit ? c.owner_unit.name : '—' }),
        el('td', { text: c.handling_node_name }),
        el('td', null, el('a', { href: '/map?node=' + encodeURIComponent(c.handling_node), text: '在地图上看' }))));
    });
    if (!page.items.length) body.appendChild(el('tr', null, el('td', { colspan: 8, class: 'empty', text: '暂无包案案件' })));
  }

  // --- overdue supervised tasks (督办) -------------------------------------------------------

  function tasks(items) {
    var body = $('tasks').querySelector('tbody');
    body.textContent = '';
    var late = items.filter(function (t) { return t.state === 'overdue'; });
    $('tasks-count').textContent = '（' + late.length + ' 项）';
    late.forEach(function (t) {
      body.appendChild(el('tr', { class: 'late', 'data-task': t.id },
        el('td', { text: t.title }),
        el('td', { text: t.owner.name }),
        el('td', { text: t.meeting_level_name }),
        el('td', { class: 'num', text: t.due_on }),
        el('td', { class: 'num', text: '逾期 ' + daysBetween(t.due_on, state.today) + ' 天' })));
    });
    if (!late.length) body.appendChild(el('tr', null, el('td', { colspan: 5, class: 'empty', text: '没有超期的督办事项' })));
  }

  session.begin();
})();

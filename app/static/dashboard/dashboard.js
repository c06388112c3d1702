// 五长网格 leaders' dashboard: plain JS, no build step. Everything comes from this app (no
// CDN: the page works on an intranet): ECharts from /static/vendor, figures from
// /api/v1/stats (docs/statistics.md). Names of tiers, townships and categories come from
// the API's answers; every date and time is the county's (WUZHANG_TIME_ZONE).
(function () {
  'use strict';

  var TIME_ZONE = 'Asia/Shanghai'; // the county's, from /map/config.json: never the browser's own
  var NODE_ROWS = 30; // the busiest grids listed; the silent ones are counted beside them

  var state = { me: null, config: null, charts: {}, figures: {}, loads: 0, townshipsFilled: false };
  window.wzd = state; // for the browser test and for debugging from the console

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'class') node.className = attrs[k];
      else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c != null) node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  function parts(date) {
    var out = {};
    new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
                                       hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
      .formatToParts(date).forEach(function (x) { out[x.type] = x.value; });
    return out;
  }

  function fmt(iso) { // '2026-12-03 22:36' in the county's zone
    if (!iso) return '—';
    var p = parts(new Date(iso));
    return p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute;
  }

  function today() { var p = parts(new Date()); return p.year + '-' + p.month + '-' + p.day; }

  function byCode(a, b) { return a.code < b.code ? -1 : a.code > b.code ? 1 : 0; }

  function pct(rate) { return rate && rate.value != null ? (rate.value * 100).toFixed(2) + '%' : '—'; }

  function frac(rate) { return rate ? rate.numerator + ' / ' + rate.denominator : ''; }

  // --- HTTP with the bearer token, refreshed once on 401 (as on /map) ---------------------

  // The login, the tokens and the API calls: app/static/common/session.js.
  var session = window.wzSession(start);
  var api = session.api, json = session.json;

  // --- start: who, the county's zone, this year by default ------------------------------

  function start() {
    Promise.all([api('/api/v1/me').then(json), fetch('/map/config.json').then(json)]).then(function (r) {
      state.me = r[0]; state.config = r[1];
      if (state.config.time_zone) TIME_ZONE = state.config.time_zone;
      $('who').textContent = state.me.name;
      var to = today();
      $('f-from').value = to.slice(0, 4) + '-01-01';
      $('f-to').value = to;
      $('login').hidden = true;
      $('app').hidden = false;
      ['tiers', 'monthly', 'categories'].forEach(function (name) {
        state.charts[name] = echarts.init($('c-' + name));
      });
      window.addEventListener('resize', function () {
        Object.keys(state.charts).forEach(function (k) { state.charts[k].resize(); });
      });
      return load();
    }).catch(function (e) {
      $('login').hidden = false;
      $('app').hidden = true;
      $('login-error').textContent = e.message;
    });
  }

  $('filters').addEventListener('submit', function (ev) { ev.preventDefault(); load(); });
  $('f-township').addEventListener('change', function () { load(); });

  function query(extra) {
    var q = new URLSearchParams({ from: $('f-from').value, to: $('f-to').value });
    if ($('f-township').value) q.set('township', $('f-township').value);
    Object.keys(extra || {}).forEach(function (k) { q.set(k, extra[k]); });
    return '?' + q.toString();
  }

  // Backlog batches come with the leadership records; until then (404) or with none, say so.
  function batches() {
    return api('/api/v1/backlog/batches').then(function (r) {
      if (r.status === 404) return [];
      return json(r).then(function (body) { return Array.isArray(body) ? body : (body.items || []); });
    }).catch(function () { return []; });
  }

  // The leadership figures have their own readers: a 403 hides the section with a note.
  function leadershipFigures() {
    return api('/api/v1/stats/leadership' + query()).then(function (r) {
      if (r.status !== 403) return json(r);
      return json(r).catch(function (e) { return { refused: e.message }; });
    });
  }

  // A city's reports fall in grids, a village's in villages (its chain has no grids): the
  // panel lists both levels together, so a rural county does not read as silent.
  function placesOfReport() {
    var levels = ['grid', 'village'];
    return Promise.all(levels.map(function (level) {
      return api('/api/v1/stats/nodes' + query({ level: level })).then(json);
    })).then(function (answers) {
      return {
        items: [].concat.apply([], answers.map(function (a) { return a.items; })),
        silent_days: answers[0].silent_days,
        silent_count: answers.reduce(function (n, a) { return n + a.silent_count; }, 0),
        level_name: answers.map(function (a) { return a.level_name; }).join('和')
      };
    });
  }

  function load() {
    $('status').textContent = '正在加载……';
    var views = ['summary', 'tiers', 'monthly', 'townships', 'categories'];
    var asks = views.map(function (v) { return api('/api/v1/stats/' + v + query()).then(json); });
    asks.push(placesOfReport());
    asks.push(batches());
    asks.push(leadershipFigures());
    return Promise.all(asks).then(function (r) {
      views.forEach(function (v, i) { state.figures[v] = r[i]; });
      state.figures.nodes = r[5];
      state.figures.batches = r[6];
      state.figures.leadership = r[7];
      render();
      state.loads += 1;
      $('status').textContent = '统计 ' + r[0].period_start + ' 至 ' + r[0].period_end + '（本县日期）· 数据生成于 ' +
        fmt(r[0].generated_at);
    }).catch(function (e) { $('status').textContent = '加载失败：' + e.message; });
  }

  function render() {
    var f = state.figures;
    fillTownships(f.townships.items);
    var picked = $('f-township').selectedOptions[0];
    if (!$('f-township-label').hidden) $('place').textContent = picked.value ? picked.textContent : state.config.county_name;
    tiles(f.summary);
    tierFunnel(f.tiers.items);
    monthly(f.monthly.items);
    league(f.townships.items);
    categories(f.categories.items);
    backlog(f.batches);
    nodes(f.nodes);
    leadership(f.leadership);
  }

  // A county-wide caller may narrow to one township; a township's own people see theirs.
  function fillTownships(items) {
    if (state.townshipsFilled || $('f-township').value) return;
    state.townshipsFilled = true;
    if (items.length > 1) {
      items.forEach(function (t) { $('f-township').appendChild(el('option', { value: t.code, text: t.name })); });
      $('f-township-label').hidden = false;
      $('place').textContent = state.config.county_name;
    } else {
      $('place').textContent = items.length ? items[0].name : state.config.county_name;
    }
  }

  // --- the headline tiles ------------------------------------------------------------------

  function tiles(s) {
    $('t-received').textContent = s.received;
    $('t-received-sub').textContent = '有调解结果 ' + s.concluded + ' 件，化解 ' + s.settled + ' 件';
    $('t-success').textContent = pct(s.success_rate);
    $('t-success-sub').textContent = '调解成功 ' + frac(s.success_rate) + ' 有调解结果' +
      (s.excluded ? '（另有 ' + s.excluded + ' 件按设置不计入）' : '');
    $('t-village').textContent = pct(s.settled_in_village_rate);
    $('t-village-sub').textContent = '在村办结 ' + frac(s.settled_in_village_rate) + ' 化解案件；大事不出镇 ' +
      pct(s.settled_in_township_rate);
    $('t-late').textContent = s.still_late;
    $('t-late-sub').textContent = '超期未办结 ' + s.still_late + ' 次；曾超期案件 ' + s.late_cases + ' 件，共超期 ' +
      s.missed_deadlines + ' 次';
  }

  // --- charts (canvas; tooltips drawn on the canvas too, so no inline styles are needed) ---

  var TOOLTIP = { renderMode: 'richText' };

  // Cases enter at the tier their severity and category pick, so the tiers are not a
  // narrowing funnel: each bar says how many reached the tier, were settled there, went up.
  function tierFunnel(items) {
    function series(name, key) {
      return { name: name, type: 'bar', label: { show: true, position: 'right' },
               data: items.map(function (t) { return t[key]; }) };
    }
    state.charts.tiers.setOption({
      tooltip: Object.assign({ trigger: 'axis' }, TOOLTIP),
      legend: { top: 0 },
      grid: { left: 70, right: 40, top: 30, bottom: 20 },
      xAxis: { type: 'value', minInterval: 1 },
      yAxis: { type: 'category', inverse: true, data: items.map(function (t) { return t.tier_name; }) },
      series: [series('到达案件数', 'cases'), series('化解案件数', 'settled'), series('上交数', 'escalated')]
    }, true);
  }

  function monthly(items) {
    state.charts.monthly.setOption({
      tooltip: Object.assign({ trigger: 'axis' }, TOOLTIP),
      legend: { top: 0 },
      grid: { left: 40, right: 50, top: 30, bottom: 30 },
      xAxis: { type: 'category', data: items.map(function (m) { return m.month; }) },
      yAxis: [{ type: 'value', name: '件', minInterval: 1 },
              { type: 'value', name: '成功率', min: 0, max: 100, axisLabel: { formatter: '{value}%' } }],
      series: [
        { name: '收案数', type: 'bar', data: items.map(function (m) { return m.received; }) },
        { name: '调解成功数', type: 'bar', data: items.map(function (m) { return m.succeeded; }) },
        { name: '调解成功率', type: 'line', yAxisIndex: 1, connectNulls: true,
          data: items.map(function (m) { return m.success_rate.value == null ? null : +(m.success_rate.value * 100).toFixed(2); }) }
      ]
    }, true);
  }

  function categories(items) {
    var shown = items.filter(function (c) { return c.received > 0; });
    state.charts.categories.setOption({
      tooltip: Object.assign({ trigger: 'item' }, TOOLTIP),
      series: [{
        name: '收案数', type: 'pie', radius: ['35%', '65%'], label: { formatter: '{b} {c}' },
        data: shown.map(function (c) { return { name: c.name, value: c.received }; })
      }],
      graphic: shown.length ? [] : [{ type: 'text', left: 'center', top: 'middle', style: { text: '本期无收案' } }]
    }, true);
  }

  // --- the league table of townships: click one to see only it -----------------------------

  function league(items) {
    var body = $('townships').querySelector('tbody');
    body.textContent = '';
    var ranked = items.slice().sort(function (a, b) { return b.received - a.received || byCode(a, b); });
    ranked.forEach(function (t, i) {
      var pick = items.length > 1;
      body.appendChild(el('tr', { class: pick ? 'pick' : '', 'data-code': t.code, title: pick ? '只看' + t.name : '',
                                  onclick: pick ? function () { $('f-township').value = t.code; load(); } : null },
        el('td', null, i + 1), el('td', { text: t.name }), el('td', null, t.received), el('td', null, t.concluded),
        el('td', { title: frac(t.success_rate) }, pct(t.success_rate)),
        el('td', { title: frac(t.settled_in_village_rate) }, pct(t.settled_in_village_rate)),
        el('td', null, t.late_cases)));
    });
    if (!items.length) body.appendChild(el('tr', null, el('td', { colspan: 7, class: 'empty', text: '暂无数据' })));
  }

  // --- progress on clearing each backlog batch (the leadership records) --------------------

  function backlog(list) {
    var box = $('batches');
    box.textContent = '';
    if (!list.length) { box.appendChild(el('p', { id: 'batches-empty', class: 'empty', text: '暂无积案批次' })); return; }
    list.forEach(function (b) {
      var total = b.total || 0, done = b.resolved || 0;
      var cleared = b.cleared === true || (total > 0 && done >= total);
      box.appendChild(el('div', { class: 'batch' },
        el('div', null, b.label + '：' + done + ' / ' + total +
           (cleared ? '（已清零）' : '') + (b.reflows ? '，倒流 ' + b.reflows + ' 件' : '')),
        el('progress', { max: Math.max(total, 1), value: done })));
    });
  }

  // --- cases per grid, each linked to the map ----------------------------------------------

  function nodes(n) {
    $('silent').textContent = '（' + n.silent_days + ' 天无上报的' + n.level_name + ' ' + n.silent_count + ' 个）';
    var body = $('nodes').querySelector('tbody');
    body.textContent = '';
    var busiest = n.items.filter(function (g) { return g.reports > 0; })
      .sort(function (a, b) { return b.reports - a.reports || byCode(a, b); }).slice(0, NODE_ROWS);
    busiest.forEach(function (g) {
      body.appendChild(el('tr', { class: g.silent ? 'silent' : '' },
        el('td', { text: g.name }), el('td', { text: g.township_name || '' }), el('td', null, g.reports),
        el('td', { text: fmt(g.last_report_at) }),
        el('td', null, el('a', { href: '/map?node=' + encodeURIComponent(g.code), text: '在地图上看' }))));
    });
    if (!busiest.length) body.appendChild(el('tr', null, el('td', { colspan: 5, class: 'empty', text: '本期无上报' })));
  }

  // --- 领导工作: the leadership figures, one small panel per part --------------------------

  function leadership(l) {
    $('leadership').hidden = !!l.refused;
    $('l-note').hidden = !l.refused;
    if (l.refused) {
      $('l-note').textContent = '本账号不能查看领导工作的统计，此部分不显示（' + l.refused + '）';
      return;
    }
    var name = l.names.figures;
    var box = $('l-parts');
    $('l-title').textContent = l.names.title + '（' + l.period_start + ' 至 ' + l.period_end + '）';
    box.textContent = '';

    function part(key, wide) {
      var div = el('div', { id: 'l-' + key, class: 'part' + (wide ? ' span' : '') }, el('h3', { text: l.names.sections[key] }));
      for (var i = 2; i < arguments.length; i++) div.appendChild(arguments[i]);
      box.appendChild(div);
    }
    // Headline figures: a name over its value; a rate as its percentage with its fraction.
    function figs(obj, keys, as) {
      return el.apply(null, ['div', { class: 'figs' }].concat(keys.map(function (k) {
        var v = obj[(as || {})[k] || k];
        var shown = v && typeof v === 'object' ? pct(v) : v;
        return el('div', { 'data-key': k, title: v && typeof v === 'object' ? frac(v) : '' },
          el('span', { text: name[k] }), el('b', null, shown));
      })));
    }
    // A table: the first column names the row, the others are figures; the last row is the total.
    function table(first, keys, rows, total) {
      var head = el.apply(null, ['tr', null, el('th', { text: name[first] })].concat(keys.map(function (k) {
        return el('th', { text: name[k] });
      })));
      var body = el('tbody');
      rows.concat([total]).forEach(function (r, i) {
        body.appendChild(el.apply(null, ['tr', { class: i === rows.length ? 'total' : '' }, el('td', { text: r.label })]
          .concat(keys.map(function (k) { return el('td', { 'data-key': k }, cell(k, r[k])); }))));
      });
      return el('table', null, el('thead', null, head), body);
    }
    function cell(k, v) {
      if (k === 'amount') return v.toFixed(2);
      if (typeof v === 'boolean') return name[v ? 'yes' : 'no'];
      return v == null ? '' : v;
    }
    function labelled(items, key) { return items.map(function (x) { return Object.assign({ label: x[key] }, x); }); }

    var v = l.visits, VISITS = ['visits', 'settle', 'route', 'unit', 'own', 'undecided', 'resolved_later'];
    part('visits', true, table('leader_name', VISITS, labelled(v.items, 'leader_name'), Object.assign({ label: name.total }, v)));
    part('ownership', false, figs(l.ownership, ['hard', 'owned', 'unowned', 'case_closed', 'complaint_withdrawn',
      'heart_settled', 'closed_otherwise', 'terminated', 'hard_open'], { hard_open: 'open' }));
    var b = l.batches, BATCH = { batch_total: 'total', batch_resolved: 'resolved', batch_open: 'open', batch_owned: 'owned' };
    var batchRows = b.items.map(function (x) {
      var row = { label: x.label, reflows: x.reflows, cleared: x.cleared };
      Object.keys(BATCH).forEach(function (k) { row[k] = x[BATCH[k]]; });
      return row;
    });
    var batchTotal = { label: name.total, cleared: null };
    ['batch_total', 'batch_resolved', 'batch_open', 'batch_owned', 'reflows'].forEach(function (k) {
      batchTotal[k] = batchRows.reduce(function (s, x) { return s + x[k]; }, 0);
    });
    part('batches', true, figs(b, ['batches', 'batches_cleared']),
      table('item', ['batch_total', 'batch_resolved', 'batch_open', 'batch_owned', 'reflows', 'cleared'], batchRows, batchTotal));
    part('reflows', false, figs(l.reflows, ['reflows', 'reopen', 'linked']));
    part('tasks', false, figs(l.tasks, ['tasks_due', 'done', 'on_time', 'late', 'open', 'overdue', 'on_time_rate'],
      { tasks_due: 'due' }));
    var REFERRALS = ['referred', 'approved', 'declined', 'amount'];
    part('referrals', true, table('name', REFERRALS, labelled(l.referrals.types, 'type_name'),
      Object.assign({ label: name.total }, l.referrals)));
    part('closures', false, table('name', ['lawful_closures'], labelled(l.closures.items, 'channel_name'),
      { label: name.total, lawful_closures: l.closures.lawful_closures }));
  }

  session.begin();
})();

// 五长网格 dispatcher map: plain JS, no build step. Everything it loads comes from this
// app (no CDN: the page works on an intranet): MapLibre from /static/vendor, tiles from /tiles,
// data from /api/v1. A base map is drawn only when the server sets one.
(function () {
  'use strict';

  var ORIGIN = location.origin;
  var POLL_MS = 3000; // live updates: the queue and markers refresh without a reload

  // The Chinese names come from the server's one glossary (GET /api/v1/categories), and
  // the API's answers carry them too (state_name, tier_name, action_name).
  var STATE_ZH = {}, TIER_ZH = {}, ACTION_ZH = {}, ROLE_ZH = {}, SEVERITY_ZH = {};
  var OPEN_STATES = ['reported', 'assigned', 'accepted', 'mediating', 'failed', 'escalated', 'returned', 'reopened'];
  var TIME_ZONE = 'Asia/Shanghai'; // the county's, from /map/config.json: never the browser's own
  var SEVERITY_COLOR = ['match', ['get', 'severity'], 1, '#2e7d32', 2, '#f9a825', 3, '#ef6c00', 4, '#6a1b9a', '#555'];

  var state = { map: null, me: null, scope: null, features: [], shown: [], categories: {}, selected: null, gridRev: 0,
                lastSig: null, timer: null, polls: 0 };
  window.wz = state; // for the browser test and for debugging from the console

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
      if (c != null) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return node;
  }

  function fmt(iso) {
    if (!iso) return '—';
    var parts = {};
    new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
                                       hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
      .formatToParts(new Date(iso)).forEach(function (x) { parts[x.type] = x.value; });
    return parts.year + '-' + parts.month + '-' + parts.day + ' ' + parts.hour + ':' + parts.minute;
  }

  function words(list, into) { list.forEach(function (w) { into[w.code] = w.name; }); }

  // --- HTTP with the bearer token, the login form and logout (common/session.js) ------

  var session = window.wzSession(start);
  var api = session.api, json = session.json;

  // --- start: who am I, which township, then the map -------------------------------------

  function bboxOf(geometry) {
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    (function walk(c) {
      if (typeof c[0] === 'number') {
        b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]);
        b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
      } else c.forEach(walk);
    })(geometry.coordinates);
    return b;
  }

  function pickScope(me) {
    // A dispatcher lands on the township they dispatch for; others on their widest scope.
    var order = ['dispatcher', 'mediator', 'leader', 'chief', 'admin'];
    var scopes = me.scopes.slice().sort(function (a, b) { return order.indexOf(a.role) - order.indexOf(b.role); });
    return scopes[0] || null;
  }

  function start() {
    Promise.all([
      api('/api/v1/me').then(json),
      api('/api/v1/categories').then(json),
      fetch('/map/config.json').then(json)
    ]).then(function (r) {
      var me = r[0], cats = r[1], config = r[2];
      state.me = me;
      if (config.time_zone) TIME_ZONE = config.time_zone;
      cats.categories.forEach(function (c) { state.categories[c.code] = c.name_zh; });
      words(cats.states, STATE_ZH); words(cats.tiers, TIER_ZH); words(cats.actions, ACTION_ZH); words(cats.roles, ROLE_ZH);
      cats.severities.forEach(function (s) { SEVERITY_ZH[s.level] = s.name_zh; });
      state.scope = pickScope(me);
      $('who').textContent = me.name + '（' + me.roles.map(function (r) { return ROLE_ZH[r] || r; }).join('、') + '）';
      fillFilters(cats);
      $('login').hidden = true;
      $('app').hidden = false;
      // /map?node=<code> (a link from the dashboard) opens on that node; else the caller's scope.
      var focus = new URLSearchParams(location.search).get('node');
      var code = focus || (state.scope && state.scope.node.code);
      var where = code ? api('/api/v1/grid/nodes/' + encodeURIComponent(code)).then(json) : Promise.resolve(null);
      if (focus) where = where.catch(function () { return null; }); // an unknown node: the whole county
      return where.then(function (node) {
        state.focus = focus && node ? node.id : null;
        $('scope-name').textContent = node ? node.properties.name : config.county_name;
        initMap(config, node && node.geometry ? bboxOf(node.geometry) : null);
      });
    }).catch(function (e) {
      $('login').hidden = false;
      $('login-error').textContent = e.message;
    });
  }

  function fillFilters(cats) {
    OPEN_STATES.forEach(function (s) { $('f-state').appendChild(el('option', { value: s, text: STATE_ZH[s] })); });
    cats.categories.forEach(function (c) { $('f-category').appendChild(el('option', { value: c.code, text: c.name_zh })); });
    Object.keys(TIER_ZH).forEach(function (t) { $('f-tier').appendChild(el('option', { value: t, text: TIER_ZH[t] })); });
    ['f-state', 'f-category', 'f-tier', 'f-overdue'].forEach(function (id) { $(id).addEventListener('change', applyFilters); });
  }

  // --- the map ------------------------------------------------------------------------------

  function gridTiles() { return [ORIGIN + '/tiles/grid/{z}/{x}/{y}.mvt?v=' + state.gridRev]; }

  function initMap(config, bbox) {
    var style = {
      version: 8,
      // Digits and Latin letters come from the app's glyphs (built by scripts/dev.sh web);
      // Chinese is drawn with the browser's own fonts (localIdeographFontFamily).
      glyphs: ORIGIN + '/map/fonts/{fontstack}/{range}.pbf',
      sources: {
        grid: { type: 'vector', tiles: gridTiles(), minzoom: 0, maxzoom: 16 },
        cases: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } }
      },
      layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#f2efe9' } }]
    };
    if (config.basemap_url) {
      style.sources.base = { type: 'raster', tiles: [config.basemap_url], tileSize: 256,
                             attribution: config.basemap_attribution || '' };
      style.layers.push({ id: 'base', type: 'raster', source: 'base' });
    }
    style.layers.push(
      { id: 'grid-fill', type: 'fill', source: 'grid', 'source-layer': 'grid',
        paint: { 'fill-color': ['interpolate', ['linear'], ['get', 'open_cases'],
                                0, '#ffffff', 1, '#fff3bf', 3, '#ffc078', 6, '#ff8787', 10, '#e03131'],
                 'fill-opacity': config.basemap_url ? 0.35 : 0.6 } },
      { id: 'grid-overdue', type: 'line', source: 'grid', 'source-layer': 'grid',
        filter: ['>', ['get', 'overdue_cases'], 0],
        paint: { 'line-color': '#d50000', 'line-width': 2.5, 'line-dasharray': [2, 1] } },
      { id: 'grid-line', type: 'line', source: 'grid', 'source-layer': 'grid',
        paint: { 'line-color': '#34495e', 'line-width': ['match', ['get', 'level'], 'township', 2, 'village', 1.5,
                                                          'community', 1.5, 1] } },
      { id: 'grid-label', type: 'symbol', source: 'grid', 'source-layer': 'grid_labels',
        layout: { 'text-field': ['get', 'name'], 'text-size': 12, 'text-font': ['DejaVu Sans Book'] },
        paint: { 'text-color': '#223', 'text-halo-color': '#fff', 'text-halo-width': 1.5 } },
      { id: 'case-points', type: 'circle', source: 'cases',
        paint: { 'circle-color': SEVERITY_COLOR,
                 'circle-radius': ['case', ['get', 'overdue'], 8, 6],
                 'circle-stroke-color': ['case', ['get', 'overdue'], '#d50000', '#ffffff'],
                 'circle-stroke-width': ['case', ['get', 'overdue'], 3, 1.5] } },
      // A ring around the case open in the panel.
      { id: 'case-selected', type: 'circle', source: 'cases', filter: ['==', ['get', 'id'], -1],
        paint: { 'circle-radius': 14, 'circle-opacity': 0, 'circle-stroke-color': '#1565c0',
                 'circle-stroke-width': 4 } }
    );
    var map = new maplibregl.Map({
      container: 'map', style: style, attributionControl: false,
      localIdeographFontFamily: "'Microsoft YaHei', 'PingFang SC', 'WenQuanYi Micro Hei', 'Noto Sans CJK SC', sans-serif",
      bounds: bbox ? [[bbox[0], bbox[1]], [bbox[2], bbox[3]]] : undefined,
      fitBoundsOptions: { padding: 20 },
      center: bbox ? undefined : [110.18, 37.75], zoom: bbox ? undefined : 9,
      // Tiles need the login: the token goes in a header, never in the URL.
      transformRequest: function (url) {
        if (session.token() && url.indexOf(ORIGIN + '/tiles/') === 0) {
          return { url: url, headers: { Authorization: 'Bearer ' + session.token() } };
        }
        return { url: url };
      }
    });
    state.map = map;
    map.addControl(new maplibregl.NavigationControl(), 'top-right');
    map.addControl(new maplibregl.ScaleControl(), 'bottom-left');
    if (config.basemap_url) map.addControl(new maplibregl.AttributionControl({ compact: true }));
    map.on('click', 'case-points', function (e) { showCase(e.features[0].properties.id); });
    map.on('mouseenter', 'case-points', function () { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', 'case-points', function () { map.getCanvas().style.cursor = ''; });
    map.on('load', function () {
      poll();
      state.timer = setInterval(poll, POLL_MS);
    });
  }

  // --- live cases: one request per poll feeds the markers and the queue -------------------

  function poll() {
    return api('/api/v1/cases.geojson?open=true&limit=500').then(json).then(function (fc) {
      state.features = fc.features;
      state.truncated = fc.truncated;
      state.polls += 1;
      var sig = fc.features.map(function (f) {
        return f.id + ':' + f.properties.state + ':' + f.properties.overdue;
      }).join(',');
      if (state.lastSig !== null && sig !== state.lastSig) {
        // Case counts on the grid changed: fetch its tiles again (ETags keep it cheap).
        state.gridRev += 1;
        state.map.getSource('grid').setTiles(gridTiles());
      }
      state.lastSig = sig;
      state.updatedAt = new Date().toISOString();
      applyFilters();
    }).catch(function (e) { $('status').textContent = '更新失败：' + e.message; });
  }

  // The queue's filters choose what both the queue and the markers show.
  function applyFilters() {
    var fs = $('f-state').value, fc = $('f-category').value, ft = $('f-tier').value, fo = $('f-overdue').checked;
    state.shown = state.features.filter(function (f) {
      var p = f.properties;
      return (!fs || p.state === fs) && (!fc || p.category === fc) && (!ft || p.tier === ft) && (!fo || p.overdue);
    });
    var source = state.map && state.map.getSource('cases'); // none until the map has loaded
    if (source) source.setData({ type: 'FeatureCollection', features: state.shown });
    var filtered = state.shown.length !== state.features.length;
    $('status').textContent = '在办案件 ' + state.features.length + ' 件' +
      (filtered ? '，符合条件 ' + state.shown.length + ' 件' : '') +
      (state.truncated ? '（仅显示最新 500 件）' : '') + ' · 更新于 ' + fmt(state.updatedAt);
    renderQueue();
  }

  function renderQueue() {
    var list = $('queue');
    list.textContent = '';
    if (!state.shown.length) {
      list.appendChild(el('li', { id: 'queue-empty', class: 'empty',
                                  text: state.features.length ? '没有符合条件的案件' : '暂无在办案件' }));
    }
    state.shown.forEach(function (f) {
      var p = f.properties;
      var li = el('li', { 'data-case-id': p.id, class: (p.overdue ? 'overdue ' : '') + (p.id === state.selected ? 'selected' : ''),
                          onclick: function () { showCase(p.id, f.geometry.coordinates); } },
        el('div', null, '#' + p.id + ' ' + (state.categories[p.category] || p.category) + ' ',
           el('span', { class: 'badge', text: SEVERITY_ZH[p.severity] }), ' ',
           el('span', { class: 'badge', text: p.state_name || p.state }), ' ',
           p.overdue ? el('span', { class: 'badge overdue', text: '超期' }) : null),
        el('div', { class: 'meta', text: (p.tier_name || p.tier) + ' · ' + p.handling_node_name + ' · 时限 ' + fmt(p.due_at) }));
      list.appendChild(li);
    });
  }

  // --- one case: details, chain, ledger, actions --------------------------------------------

  function showCase(id, coords) {
    state.selected = id;
    state.map.setFilter('case-selected', ['==', ['get', 'id'], id]);
    if (coords) state.map.flyTo({ center: coords, zoom: Math.max(state.map.getZoom(), 15) });
    var box = $('detail');
    box.hidden = false;
    box.textContent = '加载中…';
    Promise.all([
      api('/api/v1/cases/' + id).then(json),
      api('/api/v1/cases/' + id + '/ledger').then(json)
    ]).then(function (r) {
      var c = r[0], ledger = r[1];
      return api('/api/v1/grid/locate?lon=' + c.lon + '&lat=' + c.lat).then(function (res) {
        return res.ok ? res.json() : null;
      }).then(function (loc) { renderCase(c, ledger.events, loc ? loc.chain : []); });
    }).catch(function (e) { box.textContent = '无法打开案件：' + e.message; });
    renderQueue();
  }

  function row(k, v) { return el('tr', null, el('th', { text: k }), el('td', null, v)); }

  function renderCase(c, events, chain) {
    var box = $('detail');
    box.textContent = '';
    var due = c.state === 'assigned' ? c.accept_by : c.resolve_by;
    box.appendChild(el('h2', { id: 'case-title', text: '案件 #' + c.id + ' · ' + (state.categories[c.category] || c.category) }));
    box.appendChild(el('table', null,
      row('状态', c.state_name || c.state),
      row('严重程度', SEVERITY_ZH[c.severity]),
      row('层级', (c.tier_name || c.tier) + ' · ' + c.handling_node_name),
      row('时限', el('span', null, fmt(due), ' ', c.overdue ? el('span', { class: 'badge overdue', text: '超期' }) : null)),
      row('上报时间', fmt(c.reported_at)),
      row('情况', c.description)));
    box.appendChild(el('h3', { text: '照片' }));
    box.appendChild(photoList(c));
    box.appendChild(el('h3', { text: '责任链' }));
    var chainTable = el('table', { id: 'case-chain' });
    chain.forEach(function (lk) {
      chainTable.appendChild(row(lk.level_name || lk.level, lk.name + ' — ' + (lk.chiefs || []).map(function (h) {
        return h.name + (h.phone ? ' ' + h.phone : '');
      }).join('、')));
    });
    box.appendChild(chainTable);
    box.appendChild(el('h3', { text: '事事记录（台账）' }));
    var ledger = el('table', { id: 'case-ledger' });
    events.forEach(function (e) {
      ledger.appendChild(el('tr', null, el('td', { text: e.seq }), el('td', { text: fmt(e.at) }),
        el('td', { text: (e.action_name || e.action) + ' → ' + (e.to_state_name || e.to_state) }),
        el('td', { text: (e.actor || '系统') + (e.note ? '：' + e.note : '') })));
    });
    box.appendChild(ledger);
    var actions = el('div', { class: 'actions' });
    (c.allowed_actions || []).forEach(function (a) {
      actions.appendChild(el('button', { type: 'button', 'data-action': a, text: (c.allowed_action_names || {})[a] || a,
                                         onclick: function () { act(c, a); } }));
    });
    box.appendChild(el('h3', { text: '办理' }));
    box.appendChild(actions);
    box.appendChild(el('p', { id: 'action-msg', class: 'error' }));
    // Below a long queue the panel would open out of sight.
    box.scrollIntoView({ block: 'start' });
  }

  // --- the case's photos ----------------------------------------------------------------
  // An <img> cannot send the bearer token, so each thumbnail is fetched with it and shown
  // from an object URL (the page's CSP allows blob: images); a click swaps in the photo.
  var PHOTO_FAR_M = 500; // a photo taken farther than this from the report's point is flagged
  var photoUrls = [];

  function lonlat(lon, lat) { return lon.toFixed(5) + ', ' + lat.toFixed(5); }

  function showBlob(img, url) {
    return api(url).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.blob();
    }).then(function (blob) {
      var u = URL.createObjectURL(blob);
      photoUrls.push(u);
      img.src = u;
    });
  }

  function photoList(c) {
    photoUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    photoUrls = [];
    var list = el('ul', { id: 'case-photos', class: 'photos' });
    var photos = c.attachments || [];
    list.appendChild(el('li', { class: 'muted', text: '上报位置 ' + lonlat(c.lon, c.lat) + (photos.length ? '' : '；无照片') }));
    photos.forEach(function (a) {
      var far = a.distance_m != null && a.distance_m > PHOTO_FAR_M;
      var img = el('img', { alt: '照片 ' + a.id, title: '点击查看大图', 'data-attachment-id': a.id });
      img.addEventListener('click', function () {
        showBlob(img, a.url).then(function () { img.className = 'full'; })
          .catch(function (e) { img.alt = '照片加载失败：' + e.message; });
      }, { once: true });
      var place = a.taken_lon == null ? '照片未记录拍摄位置'
        : '拍摄位置 ' + lonlat(a.taken_lon, a.taken_lat) + '，距上报位置 ' + Math.round(a.distance_m) + ' 米';
      list.appendChild(el('li', { class: far ? 'far' : '' }, img, el('div', { class: 'meta' },
        el('div', { text: '拍摄时间 ' + (a.taken_at ? fmt(a.taken_at) : '照片未记录') }),
        el('div', null, place, far ? el('span', { class: 'badge overdue', text: '不在上报地点' }) : null),
        el('div', { text: '上传于 ' + fmt(a.uploaded_at) }))));
      showBlob(img, a.thumbnail_url).catch(function (e) { img.alt = '缩略图加载失败：' + e.message; });
    });
    return list;
  }

  // 退回: the next recipient is picked from the case's own chain below the handling node
  // (return_choice_nodes of the case file), with a reason; calls back with both, or not at all.
  function askReturn(c, done) {
    var dialog = $('return-dialog'), pick = $('return-to'), reason = $('return-note');
    var choices = c.return_choice_nodes || [];
    pick.textContent = '';
    choices.forEach(function (n) { pick.appendChild(el('option', { value: n.code, text: n.name + '（' + n.code + '）' })); });
    if (!choices.length) pick.appendChild(el('option', { value: '', text: '没有可退回的下级节点' }));
    pick.disabled = !choices.length;
    $('return-ok').disabled = !choices.length;
    reason.value = '';
    $('return-error').textContent = '';
    dialog.onclose = function () {
      if (dialog.returnValue === 'ok') done({ next_recipient: pick.value, note: reason.value.trim() });
    };
    dialog.returnValue = '';
    dialog.showModal();
  }

  $('return-form').addEventListener('submit', function (ev) {
    if (ev.submitter && ev.submitter.value === 'ok' && !$('return-note').value.trim()) {
      ev.preventDefault();
      $('return-error').textContent = '请填写退回理由';
    }
  });

  function act(c, action) {
    if (action === 'return') {
      askReturn(c, function (body) { send(c.id, action, Object.assign({ action: action }, body)); });
      return;
    }
    var id = c.id, body = { action: action };
    if (action === 'extend') {
      body.hours = Number(prompt('延期多少小时？', '24'));
      body.approver = prompt('上一级批准人的人员编号（person_id）？');
    }
    var note = prompt('办理意见（可空）：', '');
    if (note === null) return;
    if (note) body.note = note;
    send(id, action, body);
  }

  function send(id, action, body) {
    api('/api/v1/cases/' + id + '/actions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body)
    }).then(json).then(function () { showCase(id); poll(); })
      .catch(function (e) { $('action-msg').textContent = '未能' + (ACTION_ZH[action] || action) + '：' + e.message; });
  }

  session.begin();
})();

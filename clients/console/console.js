// OneStory's reference agent console: the screen pop of one customer, then its live timeline.
//
//   /console/?phone=14155550100#access_token=<agent token>
//
// The agent token (a JWT the integrator's backend signs; README "Agent tokens") comes in the
// URL's fragment, which never reaches a server's logs, or is typed in. The customer is named by
// ?phone=, ?email=, ?chat_session= or ?customer_id=. Calls go to this server's HTTP listener:
// unary RPCs as Connect JSON (POST /onestory.v1.<Service>/<Method>) and the timeline as
// Server-Sent Events (GET .../TimelineService/Watch, resumed with Last-Event-ID by the browser).
// Plain JavaScript, no dependencies; every value is written with textContent.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const LOOKUPS = {
    phone: 'IDENTIFIER_TYPE_PHONE',
    email: 'IDENTIFIER_TYPE_EMAIL',
    chat_session: 'IDENTIFIER_TYPE_CHAT_SESSION',
  };
  const RECENT_EVENTS = 50;

  const state = {
    token: '',
    claims: null,      // the token's payload (read, not verified: the server verifies it)
    ref: null,         // the CustomerRef the page was opened with
    customerId: '',
    events: new Map(), // eventId -> <li>, to place each event once
    channel: 'ALL',
    stream: null,
    lastCursor: '',    // of the newest event shown: where a reopened stream resumes
    retryMs: 1000,     // before reopening a stream the server refused for now
  };

  // --- Status and errors -------------------------------------------------------------------

  function setStatus(s, text) {
    const el = $('status');
    el.dataset.state = s;
    el.textContent = text || s;
  }

  function showError(message) {
    const el = $('error');
    el.textContent = message;
    el.hidden = !message;
  }

  function fail(err) {
    showError(err.message || String(err));
  }

  // --- Calls ---------------------------------------------------------------------------------

  // A unary RPC as a Connect call; throws an Error whose message says what went wrong in words.
  async function call(method, body) {
    let res;
    try {
      res = await fetch('/onestory.v1.' + method, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + state.token },
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new Error(method + ': the server cannot be reached (' + e.message + ')');
    }
    const text = await res.text();
    let json = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch (e) {
      throw new Error(method + ': the server answered ' + res.status + ' without JSON');
    }
    if (!res.ok) {
      const code = (json.code || 'unknown').replace(/_/g, ' ');
      throw new Error(method + ' failed (' + code + '): ' + (json.message || res.statusText));
    }
    return json;
  }

  function decodeClaims(token) {
    const parts = token.split('.');
    if (parts.length !== 3) throw new Error('The agent token is not a JWT (three parts).');
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    try {
      return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    } catch (e) {
      throw new Error('The agent token cannot be read: ' + e.message);
    }
  }

  // --- Rendering -----------------------------------------------------------------------------

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function meta(text) {
    return el('span', text, { class: 'meta' });
  }

  const words = (enumName) =>
    String(enumName || '')
      .replace(/^(CHANNEL|EVENT_KIND|FACT_TYPE|TYPE|CASE_STATE|IDENTIFIER_TYPE|STATE)_/, '')
      .replace(/_/g, ' ')
      .toLowerCase();

  const when = (ts) => (ts ? new Date(ts).toLocaleString() : '');

  function who(actor) {
    if (!actor || !actor.type) return '';
    return words(actor.type) + (actor.id ? ' ' + actor.id : '');
  }

  function fill(list, items, render, emptyText) {
    list.replaceChildren();
    if (!items || items.length === 0) {
      list.append(el('li', emptyText, { class: 'empty' }));
      return;
    }
    for (const item of items) list.append(render(item));
  }

  function renderContext(ctx) {
    const profile = ctx.profile || {};
    state.customerId = profile.customerId || state.customerId;

    const banner = $('banner');
    const repeat = ctx.repeatContact;
    banner.hidden = !repeat;
    banner.textContent = repeat
      ? repeat.message + ' (' + repeat.contacts + ' contacts' + (repeat.caseOpen ? ', case open' : '') + ')'
      : '';

    fill($('facts'), ctx.facts, (f) => {
      const li = el('li', null, { 'data-fact': f.type + ':' + f.name });
      li.append(el('strong', f.name.replace(/_/g, ' ') + ': '), document.createTextNode(f.value || ''));
      const due = f.dueAt ? ', due ' + when(f.dueAt) : '';
      li.append(el('br'), meta(words(f.type) + due + ' — ' + who(f.recordedBy) + ' on ' +
                               words(f.channel) + ', ' + when(f.recordedAt) +
                               (f.timesStated > 1 ? ' (said ' + f.timesStated + ' times)' : '')));
      return li;
    }, 'Nothing recorded yet.');

    fill($('cases'), ctx.openCases, (c) => {
      const li = el('li', null, { 'data-case-id': c.caseId });
      li.append(el('strong', c.topic || c.caseId));
      li.append(el('br'), meta([c.stage, words(c.state), c.owner ? 'owner ' + who(c.owner) : '',
                                (c.contacts || 0) + ' contacts'].filter(Boolean).join(' · ')));
      if (c.promise) {
        li.append(el('br'), document.createTextNode('Promised: ' + c.promise.text +
                                                    (c.promise.promisedBy ? ' by ' + when(c.promise.promisedBy) : '')));
      }
      return li;
    }, 'No open case.');

    const p = $('profile');
    p.replaceChildren();
    p.dataset.customerId = state.customerId;
    p.append(el('strong', profile.displayName || 'Unnamed customer'));
    p.append(el('br'), meta([state.customerId, profile.tier, profile.language].filter(Boolean).join(' · ')));

    fill($('identifiers'), profile.identifiers, (li) => {
      const id = li.identifier || {};
      const ev = li.evidence || {};
      const item = el('li', null, { 'data-identifier': id.type + ':' + id.value });
      item.append(el('strong', words(id.type) + ' '), document.createTextNode(id.value));
      const evidence = [ev.channel ? 'seen on ' + words(ev.channel) : '',
                        ev.verification ? words(ev.verification) : '',
                        ev.linkedBy ? 'linked by ' + who(ev.linkedBy) : '',
                        ev.mergedFrom ? 'from merged ' + ev.mergedFrom : ''].filter(Boolean);
      if (evidence.length) item.append(el('br'), meta(evidence.join(' · ')));
      return item;
    }, 'No identifier.');

    const s = ctx.signals || {};
    const dl = $('signals');
    dl.replaceChildren();
    const rows = [
      ['Contacts, 7 days', s.contacts7d || 0],
      ['Contacts, 30 days', s.contacts30d || 0],
      ['Channels, 30 days', s.distinctChannels30d || 0],
      ['Channel switches', s.channelSwitches || 0],
      ['Repeat contacts', s.repeatContacts || 0],
      ['Negative in a row', s.negativeStreak || 0],
    ];
    for (const [k, v] of rows) dl.append(el('dt', k), el('dd', v));

    fill($('conversations'), ctx.openConversations, (c) => {
      const li = el('li', null, { 'data-conversation-id': c.conversationId });
      li.append(el('strong', words(c.channel) + ' '), document.createTextNode(c.conversationId));
      li.append(el('br'), meta([c.servedBy ? 'with ' + who(c.servedBy) : '',
                                (c.eventCount || 0) + ' events', 'last ' + when(c.lastActivityAt)]
                                 .filter(Boolean).join(' · ')));
      return li;
    }, 'No open conversation.');

    // The recent events, oldest first, so each new one goes on top.
    const recent = (ctx.recentEvents || []).slice().reverse();
    for (const e of recent) addEvent(e, false);
  }

  function addEvent(e, fresh) {
    if (!e || !e.eventId || state.events.has(e.eventId)) return;
    const li = el('li', null, { 'data-event-id': e.eventId, 'data-channel': e.channel || '' });
    if (fresh) li.classList.add('new');
    li.append(el('strong', words(e.kind) + ' '), meta(words(e.channel) + ' · ' + who(e.actor) +
                                                      ' · ' + when(e.occurredAt)));
    if (e.summary) li.append(el('br'), document.createTextNode(e.summary));
    li.hidden = state.channel !== 'ALL' && e.channel !== state.channel;
    const list = $('timeline');
    const empty = list.querySelector('.empty');
    if (empty) empty.remove();
    list.prepend(li);
    state.events.set(e.eventId, li);
    renderChannels();
  }

  // One button per channel seen, and ALL: the timeline channel by channel.
  function renderChannels() {
    const seen = new Set(['ALL']);
    for (const li of state.events.values()) if (li.dataset.channel) seen.add(li.dataset.channel);
    const box = $('channels');
    if (box.children.length === seen.size) return;
    box.replaceChildren();
    for (const ch of seen) {
      const b = el('button', ch === 'ALL' ? 'all channels' : words(ch),
                   { type: 'button', 'data-channel': ch, 'aria-pressed': String(ch === state.channel) });
      b.addEventListener('click', () => {
        state.channel = ch;
        for (const btn of box.children) btn.setAttribute('aria-pressed', String(btn.dataset.channel === ch));
        for (const li of state.events.values()) li.hidden = ch !== 'ALL' && li.dataset.channel !== ch;
      });
      box.append(b);
    }
  }

  // --- The live timeline ---------------------------------------------------------------------

  // The browser's EventSource reconnects by itself after a dropped connection, resuming with
  // Last-Event-ID; watch() opens the stream again when the server refused a reconnect.
  function watch() {
    const q = new URLSearchParams({ tenant: state.claims.tenant, 'customer.customerId': state.customerId,
                                    access_token: state.token });
    if (state.lastCursor) q.set('after_cursor', state.lastCursor);
    else q.set('from_start', 'true');
    const es = new EventSource('/onestory.v1.TimelineService/Watch?' + q.toString());
    state.stream = es;
    es.onopen = () => {
      setStatus('live');
      showError('');
      state.retryMs = 1000;
    };
    es.onmessage = (m) => {
      try {
        addEvent(JSON.parse(m.data).event, true);
        if (m.lastEventId) state.lastCursor = m.lastEventId;
      } catch (e) {
        showError('A timeline message could not be read: ' + e.message);
      }
    };
    // Both the stream's own `event: error` (with data: why it ended) and a dropped connection.
    es.addEventListener('error', (m) => {
      if (m.data) {
        try {
          const why = JSON.parse(m.data);
          showError('The live timeline stopped (' + why.code.replace(/_/g, ' ') + '): ' + why.message);
        } catch (e) {
          showError('The live timeline stopped.');
        }
      }
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the reconnect; the browser will not retry by itself.
        setStatus('reconnecting');
        reopenLater(es);
      } else {
        setStatus('reconnecting');
      }
    });
  }

  // EventSource hides why a stream was refused. The same question as a unary call tells: a
  // server restarting or unreachable (try again, waiting longer each time up to 30 s), or an
  // expired token, a customer erased (stop, and say so in words).
  async function reopenLater(closed) {
    if (state.stream !== closed) return;
    try {
      await call('IdentityService/GetProfile', {
        tenant: state.claims.tenant, customer: { customerId: state.customerId } });
    } catch (e) {
      if (!/unavailable|cannot be reached|deadline exceeded|internal|unknown/.test(e.message)) {
        setStatus('error', 'stopped');
        return fail(e);
      }
    }
    const wait = state.retryMs;
    state.retryMs = Math.min(state.retryMs * 2, 30000);
    setTimeout(() => {
      if (state.stream === closed) watch();
    }, wait);
  }

  // --- Supervisor: merges --------------------------------------------------------------------

  async function loadMerges() {
    const tenant = state.claims.tenant;
    const [sugg, history] = await Promise.all([
      call('IdentityService/SuggestMerges', { tenant, customer: { customerId: state.customerId } }),
      call('IdentityService/GetMergeHistory', { tenant, customerId: state.customerId }),
    ]);
    fill($('suggestions'), sugg.suggestions, (s) => {
      const li = el('li', null, { 'data-customer-id': s.customerId });
      const name = (s.profile && s.profile.displayName) || s.customerId;
      li.append(el('strong', name + ' '), meta('score ' + Number(s.score || 0).toFixed(2)));
      li.append(el('br'), meta((s.reasons || []).map((r) => r.code.replace(/_/g, ' ') + ' ' + (r.detail || '')).join(' · ')));
      const b = el('button', 'Merge into this customer', { type: 'button', class: 'merge' });
      b.addEventListener('click', () => act(b, async () => {
        await call('IdentityService/Merge', { tenant, sourceCustomerId: s.customerId, targetCustomerId: state.customerId,
                                              reason: 'confirmed the same person in the agent console' });
      }));
      li.append(' ', b);
      return li;
    }, 'No suggestion.');
    fill($('merge-history'), history.merges, (m) => {
      const li = el('li', null, { 'data-merge-id': m.mergeId, 'data-state': m.state });
      li.append(el('strong', m.sourceCustomerId + ' → ' + m.targetCustomerId + ' '), meta(words(m.state)));
      li.append(el('br'), meta((m.reason || '') + ' — ' + who(m.actor) + ', ' + when(m.mergedAt || m.startedAt)));
      if (m.state === 'STATE_MERGED') {
        const b = el('button', 'Unmerge', { type: 'button', class: 'unmerge' });
        b.addEventListener('click', () => act(b, async () => {
          await call('IdentityService/Unmerge', { tenant, mergeId: m.mergeId, reason: 'undone in the agent console' });
        }));
        li.append(' ', b);
      }
      return li;
    }, 'No merge.');
  }

  // Runs a write from a button, then refreshes what it changed; errors go to #error.
  async function act(button, write) {
    button.disabled = true;
    try {
      await write();
      showError('');
      await refresh();
    } catch (e) {
      fail(e);
    } finally {
      button.disabled = false;
    }
  }

  // --- Screen pop ----------------------------------------------------------------------------

  async function refresh() {
    const ctx = await call('ContextService/GetContext', {
      tenant: state.claims.tenant, customer: state.customerId ? { customerId: state.customerId } : state.ref,
      recentEvents: RECENT_EVENTS,
    });
    renderContext(ctx);
    if (state.claims.audience === 'SUPERVISOR') await loadMerges();
    return ctx;
  }

  async function open() {
    setStatus('loading');
    $('screen').hidden = true;
    let ctx;
    try {
      ctx = await refresh();
    } catch (e) {
      setStatus('error');
      return fail(e);
    }
    $('screen').hidden = false;
    $('supervisor').hidden = state.claims.audience !== 'SUPERVISOR';
    const recent = ctx.recentEvents || [];
    if (recent.length === 0) $('timeline').replaceChildren(el('li', 'No interaction yet.', { class: 'empty' }));
    // From the newest event shown: nothing between the screen pop and the stream is missed.
    state.lastCursor = recent.length ? recent[0].cursor : '';
    watch();
  }

  function customerFromUrl(params) {
    if (params.get('customer_id')) return { customerId: params.get('customer_id') };
    for (const [name, type] of Object.entries(LOOKUPS)) {
      if (params.get(name)) return { identifier: { type, value: params.get(name) } };
    }
    return null;
  }

  function start() {
    const params = new URLSearchParams(location.search);
    const fragment = new URLSearchParams(location.hash.slice(1));
    state.token = fragment.get('access_token') || sessionStorage.getItem('onestory.token') || '';
    if (fragment.get('access_token')) sessionStorage.setItem('onestory.token', state.token);
    if (!state.token) {
      setStatus('error', 'no token');
      $('token-form').hidden = false;
      return;
    }
    try {
      state.claims = decodeClaims(state.token);
    } catch (e) {
      setStatus('error');
      $('token-form').hidden = false;
      return fail(e);
    }
    if (state.claims.exp && state.claims.exp * 1000 < Date.now()) {
      showError('The agent token expired at ' + new Date(state.claims.exp * 1000).toLocaleString() +
                '; ask for a new one.');
    }
    $('who').textContent = (state.claims.sub || '') + ' · ' + (state.claims.audience || '').toLowerCase() +
                           ' · ' + (state.claims.tenant || '');
    state.ref = customerFromUrl(params);
    if (!state.ref) {
      setStatus('error', 'no customer');
      $('customer-form').hidden = false;
      return;
    }
    open();
  }

  // --- Forms ---------------------------------------------------------------------------------

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token-input').value.trim();
    if (!token) return;
    sessionStorage.setItem('onestory.token', token);
    location.hash = '';
    location.reload();
  });

  $('customer-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = $('lookup-value').value.trim();
    if (!value) return;
    const q = new URLSearchParams({ [$('lookup-type').value]: value });
    location.search = q.toString();
  });

  $('note-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('note-text').value.trim();
    if (!text) return showError('The note is empty.');
    act($('note-send'), async () => {
      await call('TimelineService/Append', {
        tenant: state.claims.tenant, customer: { customerId: state.customerId },
        // The actor is left out: the server writes the token's agent.
        events: [{ channel: 'CHANNEL_WEB', kind: 'EVENT_KIND_NOTE', summary: text }],
      });
      $('note-text').value = '';
    });
  });

  $('fact-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('fact-name').value.trim();
    const value = $('fact-value').value.trim();
    if (!name || !value) return showError('A fact needs a name and a value.');
    act($('fact-send'), async () => {
      await call('ConversationService/RecordFacts', {
        tenant: state.claims.tenant, customer: { customerId: state.customerId }, channel: 'CHANNEL_WEB',
        facts: [{ type: $('fact-type').value, name, value }],
      });
      $('fact-name').value = '';
      $('fact-value').value = '';
    });
  });

  start();
})();

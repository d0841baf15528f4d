/*
 * BayouRecovery: a faye client extension for Bayou's delivery guarantees.
 * Served by Bayou at {mount}/extensions/recovery.js (plain ES5, no build step).
 *
 * What it does, for a faye 1.4 client (Bayou must keep history for the
 * channels concerned: `bayou --history '/chat/**=100:10m'`):
 *   - remembers, per channel, the position of the last message delivered
 *     (ext.replayId and ext.epoch, which Bayou adds to every message of a
 *     channel with history, and ext.replay of subscribe replies);
 *   - when faye (re)subscribes a channel whose position it knows (faye
 *     subscribes again by itself after a new handshake, e.g. when its
 *     session expired), asks Bayou to replay what came after that position:
 *     ext.replay = {"<channel>": {replayId: N, epoch: "E"}} with
 *     ext.replayLost = "report" (and on a first subscribe, ext.replay -1:
 *     only new messages, but the reply says where the channel stands);
 *   - drops the copies of messages already delivered (same epoch, replayId
 *     not above the last one), so the application sees each message of a
 *     history channel once, in order; a new epoch starts afresh;
 *   - turns on acknowledgements (CometD's ack extension protocol: handshake
 *     ext.ack = true, each /meta/connect carries the last batch received),
 *     so that Bayou re-sends what a broken connection swallowed;
 *   - when Bayou answers that a position is no longer retained (a subscribe
 *     reply with recovered: false), calls options.onLost(channel, position)
 *     and triggers "recovery:lost" on the client (client.bind(
 *     'recovery:lost', fn)): messages were missed, reload the state.
 *
 * In a page:
 *   <script src="/bayeux/client.js"></script>
 *   <script src="/bayeux/extensions/recovery.js"></script>
 *   var client = new Faye.Client('/bayeux');
 *   client.addExtension(new BayouRecovery({ onLost: function (ch) { reload(ch); } }));
 *
 * In Node (CommonJS, or from ESM through module.createRequire):
 *   var BayouRecovery = require('./recovery.js');
 *   client.addExtension(new BayouRecovery());
 *
 * Options: ack (default true; false leaves acknowledgements off), onLost
 * (function(channel, position)), positions ({channel: {replayId, epoch}}
 * to resume from, e.g. saved before a page reload). Methods: position(ch),
 * positions() (a copy, to save), and the counters in .stats (duplicates
 * dropped, gaps seen, lost replays). Use one instance per client.
 * Replay works on channel names; a wildcard subscription is only
 * de-duplicated.
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.BayouRecovery = factory();
}(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var has = Object.prototype.hasOwnProperty;

  function isNumber(v) { return typeof v === 'number' && isFinite(v); }

  // replayable reports whether a subscription can carry ext.replay: a
  // channel name, not a wildcard, meta or service channel.
  function replayable(ch) {
    return typeof ch === 'string' && ch.indexOf('*') < 0 &&
      ch.indexOf('/meta/') !== 0 && ch.indexOf('/service/') !== 0;
  }

  function BayouRecovery(options) {
    options = options || {};
    this._ack = options.ack !== false;
    this._onLost = options.onLost;
    this._pos = {};    // channel -> {replayId, epoch}: last delivered
    this._asked = {};  // channel -> ext.replay value of its last subscribe
    this._batch = 0;
    this._acking = false;
    this.stats = { duplicates: 0, gaps: 0, lost: 0 };
    var given = options.positions || {};
    for (var ch in given) {
      if (has.call(given, ch) && given[ch] && isNumber(given[ch].replayId)) {
        this._pos[ch] = { replayId: given[ch].replayId, epoch: String(given[ch].epoch) };
      }
    }
  }

  BayouRecovery.prototype.added = function (client) { this._client = client; };

  BayouRecovery.prototype.position = function (channel) {
    var p = this._pos[channel];
    return p ? { replayId: p.replayId, epoch: p.epoch } : undefined;
  };

  BayouRecovery.prototype.positions = function () {
    var out = {};
    for (var ch in this._pos) if (has.call(this._pos, ch)) out[ch] = this.position(ch);
    return out;
  };

  BayouRecovery.prototype.outgoing = function (message, callback) {
    var ch = message.channel, ext;
    if (ch === '/meta/handshake') {
      this._batch = 0;
      this._acking = false;
      if (this._ack) { ext = message.ext = message.ext || {}; ext.ack = true; }
    } else if (ch === '/meta/connect') {
      if (this._acking) { ext = message.ext = message.ext || {}; ext.ack = this._batch; }
    } else if (ch === '/meta/subscribe') {
      this._askReplay(message);
    } else if (ch === '/meta/unsubscribe') {
      var subs = [].concat(message.subscription);
      for (var i = 0; i < subs.length; i++) { delete this._pos[subs[i]]; delete this._asked[subs[i]]; }
    }
    callback(message);
  };

  // _askReplay adds ext.replay for the subscribed channel names (unless
  // the application asked for a replay itself): after the known position,
  // or -1 (only new messages) to learn where the channel stands, so that a
  // channel can be resumed even before its first message arrived.
  BayouRecovery.prototype._askReplay = function (message) {
    var subs = [].concat(message.subscription), ext = message.ext || {}, added = false, resume = false;
    var replay = ext.replay && typeof ext.replay === 'object' ? ext.replay : {};
    for (var i = 0; i < subs.length; i++) {
      var ch = subs[i], p = this._pos[ch];
      if (!replayable(ch)) continue;
      if (!has.call(replay, ch)) {
        replay[ch] = p ? { replayId: p.replayId, epoch: p.epoch } : -1;
        added = true;
        resume = resume || !!p;
      }
      this._asked[ch] = replay[ch];
    }
    if (!added) return;
    ext.replay = replay;
    if (resume && ext.replayLost === undefined) ext.replayLost = 'report';
    message.ext = ext;
  };

  BayouRecovery.prototype.incoming = function (message, callback) {
    var ch = message.channel, ext = message.ext;
    if (ch === '/meta/handshake') {
      if (message.successful && ext && this._ack) {
        var a = ext.ack;
        this._acking = a === true || !!(a && typeof a === 'object' && a.enabled);
        if (a && isNumber(a.batch)) this._batch = a.batch;
      }
    } else if (ch === '/meta/connect') {
      if (message.successful && this._acking && ext && isNumber(ext.ack)) this._batch = ext.ack;
    } else if (ch === '/meta/subscribe') {
      if (message.successful && ext && ext.replay && typeof ext.replay === 'object') this._replied(ext.replay);
    } else if (message.data !== undefined && message.successful === undefined && ext &&
               isNumber(ext.replayId) && typeof ext.epoch === 'string' && !this._fresh(ch, ext)) {
      this.stats.duplicates++;
      return callback(null); // already delivered: faye drops it
    }
    callback(message);
  };

  // _fresh records the position of a message on a history channel and
  // reports whether it is new (not at or before the last one delivered).
  BayouRecovery.prototype._fresh = function (ch, ext) {
    var p = this._pos[ch];
    if (p && p.epoch === ext.epoch) {
      if (ext.replayId <= p.replayId) return false;
      if (ext.replayId > p.replayId + 1) this.stats.gaps++;
    }
    this._pos[ch] = { replayId: ext.replayId, epoch: ext.epoch };
    return true;
  };

  // _replied reads a subscribe reply's ext.replay: {channel: {replayId,
  // epoch, recovered}}, replayId being where live delivery continues.
  BayouRecovery.prototype._replied = function (replay) {
    for (var ch in replay) {
      if (!has.call(replay, ch)) continue;
      var r = replay[ch], p = this._pos[ch], asked = this._asked[ch];
      if (!r || !isNumber(r.replayId) || typeof r.epoch !== 'string') continue;
      delete this._asked[ch];
      if (r.recovered === false) {
        if (!p || p.epoch !== r.epoch || p.replayId < r.replayId) this._pos[ch] = { replayId: r.replayId, epoch: r.epoch };
        this._lost(ch, r);
        continue;
      }
      if (p && p.epoch === r.epoch) continue; // the replayed messages follow and advance it
      var from = r.replayId; // nothing replayed: live delivery continues after it
      if (asked !== undefined && asked !== -1) {
        // A replay the application asked for itself: the replayed messages
        // follow, from after its offset (-2: from the oldest retained).
        from = isNumber(asked) ? Math.max(asked, 0) : (asked && isNumber(asked.replayId) ? asked.replayId : 0);
      }
      this._pos[ch] = { replayId: from, epoch: r.epoch };
    }
  };

  BayouRecovery.prototype._lost = function (ch, r) {
    this.stats.lost++;
    var where = { replayId: r.replayId, epoch: r.epoch };
    if (typeof this._onLost === 'function') this._onLost(ch, where);
    if (this._client && typeof this._client.trigger === 'function') this._client.trigger('recovery:lost', ch, where);
  };

  return BayouRecovery;
}));

// The overlay: a client of the streamer protocol (docs/protocol.md) in one small script.
// It connects to the server that served it, draws what the messages say, and reconnects
// by itself when the connection drops (the server restarted, the network hiccuped).
// URL options: ?token=... (the server's), ?transparent=1 (for broadcast software), and
// ?hide=bars,timeline,recommendations (any of them) to leave those parts out.
"use strict";

const TIMELINE_SECONDS = 600; // the strip shows the last ten minutes
const HIDEABLE = ["bars", "timeline", "recommendations"];
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;

const params = new URLSearchParams(location.search);
const palette = JSON.parse(document.body.dataset.palette);
const silenceColor = document.body.dataset.silence;
const $ = (id) => document.getElementById(id);

let labels = [];
let shownTags = null; // the hello's rule for which tags to show
let latest = null; // the last update
let segments = []; // closed segments, oldest first
let retryMs = RETRY_FIRST_MS;

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const token = params.get("token");
  return `${scheme}//${location.host}/` + (token ? `?token=${encodeURIComponent(token)}` : "");
}

function color(genre) {
  const index = labels.indexOf(genre);
  return index < 0 ? silenceColor : palette[index % palette.length];
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  const mmss = `${String(hms[1]).padStart(hms[0] ? 2 : 1, "0")}:${String(hms[2]).padStart(2, "0")}`;
  return hms[0] ? `${hms[0]}:${mmss}` : mmss;
}

function setConnection(state, text) {
  const element = $("connection");
  element.dataset.state = state;
  element.textContent = text;
}

function buildBars() {
  const bars = $("bars");
  bars.replaceChildren();
  for (const label of labels) {
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = label;
    name.dataset.label = label;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.style.background = color(label);
    fill.dataset.label = label;
    bar.append(fill);
    const value = document.createElement("div");
    value.className = "value";
    value.dataset.label = label;
    bars.append(name, bar, value);
  }
}

function showUpdate(update) {
  const genre = $("genre");
  const music = update.top !== null;
  genre.textContent = music ? update.top : update.state === "music" ? "listening…" : update.state;
  genre.dataset.genre = update.top ?? "";
  genre.style.color = music ? color(update.top) : silenceColor;
  $("confidence").textContent = music ? `${Math.round(100 * update.confidence)} %` : "";
  for (const label of labels) {
    const p = update.probabilities[label] ?? 0;
    document.querySelector(`.bar > div[data-label="${CSS.escape(label)}"]`).style.width =
      `${(100 * p).toFixed(1)}%`;
    document.querySelector(`.value[data-label="${CSS.escape(label)}"]`).textContent =
      `${Math.round(100 * p)}%`;
    document.querySelector(`.name[data-label="${CSS.escape(label)}"]`)
      .classList.toggle("top", label === update.top);
  }
  showTags(update);
}

// Which tags to show: streamer.outlets.protocol.confident_tags, with the hello's numbers.
function confidentTags(tags) {
  const { minimum, limit } = shownTags;
  return Object.entries(tags ?? {})
    .filter(([, p]) => p >= minimum)
    .sort(([a, p], [b, q]) => q - p || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, limit)
    .map(([name]) => name);
}

function showTags(update) {
  // During music only: the tags of a silent patch describe nothing.
  const names = update.state === "music" ? confidentTags(update.tags) : [];
  const chips = names.map((name) => {
    const chip = document.createElement("span");
    chip.textContent = name;
    return chip;
  });
  $("tags").replaceChildren(...chips);
  $("tags").hidden = chips.length === 0;
}

function showTimeline() {
  const strip = $("timeline");
  strip.replaceChildren();
  if (latest === null) return;
  const end = latest.time;
  const start = Math.max(0, end - TIMELINE_SECONDS);
  const span = Math.max(end - start, 1e-3);
  const spans = segments.map((s) => [s.start, s.end, s.genre, s.state]);
  spans.push([latest.segment_start, end, latest.top, latest.state]);
  for (const [from, to, genre, state] of spans) {
    const width = Math.min(to, end) - Math.max(from, start);
    if (width <= 0) continue;
    const cell = document.createElement("div");
    cell.style.width = `${(100 * width) / span}%`;
    cell.style.background = genre === null ? silenceColor : color(genre);
    cell.title = `${clock(from)}–${clock(to)} ${genre ?? state}`;
    cell.dataset.genre = genre ?? "";
    strip.append(cell);
  }
  $("timeline-start").textContent = clock(start);
  $("timeline-end").textContent = clock(end);
  segments = segments.filter((s) => s.end > start); // older ones are off the strip for good
}

function showRecommendations(message) {
  const section = $("recommendations");
  section.hidden = !message;
  const playing = message?.now_playing;
  $("now-playing").textContent = playing ? `now playing: ${playing.name}` : "";
  const items = (message?.tracks ?? []).slice(0, 5).map((track) => {
    const item = document.createElement("li");
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = [
      `${Math.round(track.similarity)} %`, // percent, as the protocol sends it
      track.genre, track.tempo && `${Math.round(track.tempo)} BPM`, track.camelot,
    ].filter(Boolean).join(" · ");
    item.append(track.name, why);
    return item;
  });
  $("tracks").replaceChildren(...items);
}

// With `streamer monitor` the page follows one stream: ?stream=NAME, else the first.
let stream = null;

function handle(message, socket) {
  if (message.type === "hello" && message.streams) {
    const chosen = message.streams.find((s) => s.name === params.get("stream")) ?? message.streams[0];
    stream = chosen.name;
    message = { ...message, state: chosen.state, segments: message.segments.filter((s) => s.stream === stream) };
    socket.send(JSON.stringify({ type: "subscribe", streams: [stream] }));
  }
  if (message.stream !== undefined && message.stream !== stream) return; // sent before the subscribe
  switch (message.type) {
    case "hello":
      labels = message.labels;
      shownTags = message.shown_tags;
      segments = message.segments;
      latest = message.state;
      buildBars();
      if (latest) showUpdate(latest);
      showTimeline();
      showRecommendations(message.recommendations ?? null);
      break;
    case "update":
      latest = message;
      showUpdate(message);
      showTimeline();
      break;
    case "segment":
      segments.push(message);
      break;
    case "recommendations":
      showRecommendations(message);
      break;
    case "status": {
      const alert = $("input-lost");
      alert.hidden = message.input !== "lost";
      alert.textContent = alert.hidden ? "" : `input lost at ${clock(message.input_lost_at)}: waiting for it`;
      break;
    }
    default: // pong, error and types added later: nothing to show
  }
}

function connect() {
  setConnection("connecting", "connecting…");
  const socket = new WebSocket(socketUrl());
  socket.onopen = () => {
    retryMs = RETRY_FIRST_MS;
    setConnection("live", "live");
  };
  socket.onmessage = (event) => handle(JSON.parse(event.data), socket);
  socket.onclose = () => {
    setConnection("reconnecting", `reconnecting in ${(retryMs / 1000).toFixed(1)} s…`);
    setTimeout(connect, retryMs);
    retryMs = Math.min(2 * retryMs, RETRY_MAX_MS);
  };
}

if (params.get("transparent") === "1") document.body.classList.add("transparent");
for (const part of (params.get("hide") ?? "").split(",")) {
  if (HIDEABLE.includes(part.trim())) document.body.classList.add(`hide-${part.trim()}`);
}
connect();

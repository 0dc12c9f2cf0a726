// The emulated devices' panels (emulator mode only: the service says which slots it can play).
// Each button is one control line to POST /v1/emulators/{slot}, as `till emulate FAMILY --help`
// lists them; the signature pad takes the strokes drawn here, the printer's roll comes back as
// images of its pages.

const $ = (id) => document.getElementById(id);

// The documented test payment codes (emulator/wallet/payers.py): the last two digits choose
// what the emulated customer does.
const PAYERS = [
  ["130000000000000000", "pays at once / 立即支付"],
  ["130000000000000001", "enters a password, pays after 10 s / 输密码"],
  ["130000000000000003", "never pays / 不支付"],
  ["130000000000000004", "not enough balance / 余额不足"],
  ["130000000000000008", "never pays, the reverse is not answered / 撤销无应答"],
  ["280000000000000000", "Alipay, pays at once / 支付宝"],
];

let api = null;

async function control(slot, line) {
  try {
    const { reply } = await api("POST", `/v1/emulators/${slot}`, { line });
    $("dev-reply").textContent = `${slot}: ${reply}`;
    return reply;
  } catch (err) {
    $("dev-reply").textContent = `${slot}: ${err.message}`;
    return null;
  }
}

function cardReader(cards) {
  const select = $("card-select");
  select.replaceChildren(...cards.map((c) => new Option(`${c.name} (${c.modes.join("/")})`, c.name)));
  const modes = () => (cards.find((c) => c.name === select.value) || { modes: [] }).modes;
  const refresh = () => {
    for (const id of ["card-chip", "card-swipe", "card-tap"]) $(id).disabled = !modes().includes($(id).dataset.mode);
  };
  select.addEventListener("change", refresh);
  refresh();
  for (const id of ["card-chip", "card-swipe", "card-tap"]) {
    $(id).addEventListener("click", () => control("card_reader", `present ${select.value} ${$(id).dataset.mode}`));
  }
  $("card-remove").addEventListener("click", () => control("card_reader", "remove"));
  $("pin-manual").addEventListener("change", (e) => control("card_reader", `pin ${e.target.checked ? "manual" : "auto"}`));
  const value = $("pinpad-value");
  for (const b of document.querySelectorAll("#pinpad button")) {
    b.addEventListener("click", async () => {
      const k = b.dataset.pin;
      if (k === "C") value.value = "";
      else if (k === "OK") {
        const pin = value.value;
        value.value = "";
        if (pin) await control("card_reader", `pin ${pin}`);
      } else if (value.value.length < 12) value.value += k;
    });
  }
}

function scanner() {
  $("payer-select").replaceChildren(...PAYERS.map(([code, label]) => new Option(`${label} ${code.slice(-2)}`, code)));
  $("scan").addEventListener("click", () => control("scanner", `scan ${$("payer-select").value}`));
  // The last sale's cardholder copy, as its picture: the scanner emulator decodes its lookup QR.
  $("scan-receipt").addEventListener("click", async () => {
    const trace = $("sup-trace").value.trim();
    if (!trace) return;
    try {
      const { reply } = await api("POST", "/v1/emulators/scanner/scan-receipt", { trace });
      $("dev-reply").textContent = `scanner: ${reply}`;
    } catch (err) {
      $("dev-reply").textContent = `scanner: ${err.message}`;
    }
  });
}

export async function showRoll() {
  if (!api) return;
  const roll = $("roll");
  let count = 0;
  try {
    ({ pages: count } = await api("GET", "/v1/emulators/printer/pages"));
  } catch {
    return;
  }
  const stamp = Date.now();
  const images = [];
  for (let n = Math.max(1, count - 5); n <= count; n += 1) {
    const img = new Image();
    img.src = `/v1/emulators/printer/pages/${n}?t=${stamp}`;
    img.alt = `page ${n}`;
    img.dataset.page = String(n);
    images.push(img);
  }
  roll.replaceChildren(...images);
  roll.dataset.pages = String(count);
}

function printer() {
  $("paper-out").addEventListener("click", () => control("printer", "fault paper-out"));
  $("paper-near-end").addEventListener("click", () => control("printer", "fault near-end"));
  $("cover-open").addEventListener("click", () => control("printer", "fault cover-open"));
  $("paper-refill").addEventListener("click", async () => {
    await control("printer", "clear");
    setTimeout(showRoll, 500);
  });
  $("roll-refresh").addEventListener("click", showRoll);
}

function host() {
  $("host-latency").addEventListener("click", () => control("host", `latency ${$("host-latency-s").value.trim()}`));
  $("host-silent").addEventListener("click", () => control("host", "silent on"));
  $("host-decline").addEventListener("click", () => control("host", `decline ${$("host-decline-code").value.trim()}`));
  $("host-drop").addEventListener("click", () => control("host", "drop 1"));
  $("host-clear").addEventListener("click", () => control("host", "clear"));
}

function signaturePad() {
  const canvas = $("sig-canvas");
  const ink = canvas.getContext("2d");
  let strokes = [];
  let current = null;
  const point = (e) => {
    const box = canvas.getBoundingClientRect();
    return [Math.round(((e.clientX - box.left) * canvas.width) / box.width),
      Math.round(((e.clientY - box.top) * canvas.height) / box.height)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    current = [point(e)];
    strokes.push(current);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!current) return;
    const [x0, y0] = current[current.length - 1];
    const [x, y] = point(e);
    current.push([x, y]);
    ink.beginPath();
    ink.moveTo(x0, y0);
    ink.lineTo(x, y);
    ink.stroke();
  });
  const up = () => {
    current = null;
  };
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
  const clear = () => {
    strokes = [];
    ink.clearRect(0, 0, canvas.width, canvas.height);
  };
  ink.lineWidth = 2;
  $("sig-clear").addEventListener("click", () => {
    clear();
    control("signature_pad", "clear");
  });
  $("sig-send").addEventListener("click", async () => {
    const drawn = strokes.filter((s) => s.length > 1);
    if (!drawn.length) return;
    try {
      const { reply } = await api("POST", "/v1/emulators/signature_pad/strokes", { strokes: drawn });
      $("dev-reply").textContent = `signature_pad: ${reply}`;
      clear();
    } catch (err) {
      $("dev-reply").textContent = `signature_pad: ${err.message}`;
    }
  });
  $("sig-ok").addEventListener("click", () => control("signature_pad", "ok"));
}

export async function initDevices(apiFn, slots) {
  if (api) return; // wired once per page
  api = apiFn;
  const { cards } = await api("GET", "/v1/emulators");
  for (const slot of slots) {
    const panel = $(`dev-${slot}`);
    if (panel) panel.hidden = false;
  }
  if (slots.includes("card_reader")) cardReader(cards);
  if (slots.includes("scanner")) scanner();
  if (slots.includes("printer")) {
    printer();
    showRoll();
  }
  if (slots.includes("host")) host();
  if (slots.includes("signature_pad")) signaturePad();
  document.body.dataset.devices = "1";
  if (slots.includes("wallet")) {
    $("wallet-pay-shown").addEventListener("click", () => control("wallet", "pay-shown"));
    $("wallet-fault-next").addEventListener("click", () => control("wallet", `fault ${$("wallet-fault").value} 1`));
    $("wallet-clear").addEventListener("click", () => control("wallet", "fault clear"));
  }
}

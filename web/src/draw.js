// The drawing canvas: a coloured shape on a white background, the default model's domain.
// Pointer (mouse, touch, pen): the brush paints strokes, the fill tool floods an area. Keyboard:
// arrow keys move a cursor, Space puts the brush down or lifts it (or fills with the fill tool).

/** The 8 colours of the synthetic data set: native-trainer/src/synth.rs's COLOURS (a test there keeps them equal). */
export const COLOURS = [
  ["red", [215, 35, 35]], ["green", [40, 165, 55]], ["blue", [35, 70, 215]], ["yellow", [235, 215, 40]],
  ["purple", [135, 45, 185]], ["pink", [245, 125, 195]], ["cyan", [40, 200, 215]], ["brown", [135, 80, 35]],
];
const BACKGROUND = "#ffffff";
const FILL_TOLERANCE = 120; // summed |dR|+|dG|+|dB| still counted as the clicked area (anti-aliased edges)
const KEY_STEP = 8;

/** Floods the area around (x, y) that looks like its pixel with `rgb`, one pixel beyond its edge. */
function floodFill(ctx, x, y, rgb) {
  const { width: w, height: h } = ctx.canvas;
  const img = ctx.getImageData(0, 0, w, h);
  const d = img.data;
  const start = (y * w + x) * 4;
  const seed = [d[start], d[start + 1], d[start + 2]];
  const near = (p) => Math.abs(d[p * 4] - seed[0]) + Math.abs(d[p * 4 + 1] - seed[1]) + Math.abs(d[p * 4 + 2] - seed[2]) <= FILL_TOLERANCE;
  const mark = new Uint8Array(w * h); // 1: inside, 2: edge
  const stack = [y * w + x];
  mark[stack[0]] = 1;
  while (stack.length) {
    const p = stack.pop();
    const px = p % w;
    for (const q of [px > 0 ? p - 1 : -1, px < w - 1 ? p + 1 : -1, p - w, p + w]) {
      if (q < 0 || q >= w * h || mark[q]) continue;
      mark[q] = near(q) ? 1 : 2;
      if (mark[q] === 1) stack.push(q);
    }
  }
  for (let p = 0; p < w * h; p++) {
    if (mark[p]) d.set(rgb, p * 4);
  }
  ctx.putImageData(img, 0, 0);
}

/**
 * Wires the canvas. `settings()` returns { colour: [r, g, b], tool: "brush" | "fill", size };
 * `onDrawn()` runs after each finished stroke or fill. Returns { clear }.
 */
export function drawingPad(canvas, cursor, settings, onDrawn) {
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let last = null; // the brush's previous point while it is down
  const key = { x: canvas.width / 2, y: canvas.height / 2, down: false };

  const clear = () => {
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  const brushTo = (x, y) => {
    const { colour, size } = settings();
    ctx.strokeStyle = `rgb(${colour.join(",")})`;
    ctx.lineWidth = size;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...(last ?? [x, y]));
    ctx.lineTo(x, y);
    ctx.stroke();
    last = [x, y];
  };
  const fillAt = (x, y) => {
    floodFill(ctx, Math.round(x), Math.round(y), settings().colour);
    onDrawn();
  };
  const canvasPoint = (e) => {
    const r = canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) / r.width) * canvas.width;
    const y = ((e.clientY - r.top) / r.height) * canvas.height;
    return [Math.min(Math.max(x, 0), canvas.width - 1), Math.min(Math.max(y, 0), canvas.height - 1)];
  };

  canvas.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    canvas.focus();
    if (settings().tool === "fill") return fillAt(...canvasPoint(e));
    canvas.setPointerCapture(e.pointerId);
    last = null;
    brushTo(...canvasPoint(e));
  });
  canvas.addEventListener("pointermove", (e) => last && brushTo(...canvasPoint(e)));
  const endStroke = () => {
    if (!last) return;
    last = null;
    onDrawn();
  };
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  const showCursor = () => {
    cursor.hidden = false;
    const scale = canvas.clientWidth / canvas.width;
    const size = settings().tool === "fill" ? 12 : settings().size * scale;
    Object.assign(cursor.style, { left: `${key.x * scale}px`, top: `${key.y * scale}px`, width: `${size}px`, height: `${size}px` });
    cursor.classList.toggle("down", key.down);
  };
  canvas.addEventListener("focus", showCursor);
  canvas.addEventListener("blur", () => {
    if (key.down) endStroke();
    key.down = false;
    cursor.hidden = true;
  });
  canvas.addEventListener("keydown", (e) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[e.key]) {
      const [dx, dy] = moves[e.key];
      key.x = Math.min(Math.max(key.x + dx * KEY_STEP, 0), canvas.width - 1);
      key.y = Math.min(Math.max(key.y + dy * KEY_STEP, 0), canvas.height - 1);
      if (key.down) brushTo(key.x, key.y);
    } else if (e.key === " ") {
      if (settings().tool === "fill") fillAt(key.x, key.y);
      else if (key.down) {
        key.down = false;
        endStroke();
      } else {
        key.down = true;
        last = null;
        brushTo(key.x, key.y);
      }
    } else {
      return;
    }
    e.preventDefault();
    showCursor();
  });

  clear();
  return { clear };
}

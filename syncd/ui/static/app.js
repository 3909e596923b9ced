// syncd UI: small enhancements over pages that work without script.
"use strict";

// Player: start at ?t= (the media fragment #t= in the src does it too), and let the
// list of moments seek in place instead of reloading the page.
(function () {
  const video = document.getElementById("player");
  if (!video) return;
  const start = parseFloat(video.dataset.start || "0");
  // The remote's HLS (relayed by this server): hls.js over Media Source Extensions where
  // there are any, as hls.js advises; else the browser's own HLS (Safari) plays the src.
  if (video.dataset.hls && window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls({ startPosition: start > 0 ? start : -1 });
    hls.loadSource(video.dataset.hls);
    hls.attachMedia(video);
  } else if (video.dataset.hls) {
    video.preload = "metadata";
  }
  if (start > 0) {
    const seek = () => { if (Math.abs(video.currentTime - start) > 0.5) video.currentTime = start; };
    if (video.readyState >= 1) seek(); else video.addEventListener("loadedmetadata", seek, { once: true });
  }
  document.querySelectorAll(".moments a[data-t]").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const t = parseFloat(link.dataset.t);
      video.currentTime = t;
      video.play().catch(() => {});
      document.querySelectorAll(".moments a.on").forEach((a) => a.classList.remove("on"));
      link.classList.add("on");
      history.replaceState(null, "", "?t=" + t);
    });
  });
})();

// Ask: stream the answer (Server-Sent Events over a POST) into the conversation, which
// is kept per video for as long as the tab is open.
(function () {
  const form = document.getElementById("ask");
  if (!form) return;
  const box = document.getElementById("conversation");
  const videoId = form.dataset.video;
  const storeKey = "syncd-ask-" + videoId;
  let history = [];
  try { history = JSON.parse(sessionStorage.getItem(storeKey) || "[]"); } catch (e) { history = []; }

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.textContent = text;
    box.appendChild(div);
    box.scrollTop = box.scrollHeight;
    return div;
  }
  history.forEach((m) => bubble(m.role, m.content));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = form.elements.question;
    const question = field.value.trim();
    if (!question) return;
    const button = form.querySelector("button");
    button.disabled = true;
    field.value = "";
    bubble("user", question);
    const answer = bubble("assistant pending", "");
    let text = "";
    let failed = "";
    try {
      const response = await fetch("/ask/" + encodeURIComponent(videoId), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify({ question: question, history: history }),
      });
      if (!response.ok || !response.body) throw new Error("the server answered " + response.status);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message", data = "";
          block.split("\n").forEach((line) => {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          });
          if (name === "token") {
            text += JSON.parse(data);
            answer.textContent = text;
            answer.dataset.chunks = String(Number(answer.dataset.chunks || 0) + 1);  // shown as it arrives
            box.scrollTop = box.scrollHeight;
          }
          else if (name === "error") failed = JSON.parse(data);
        }
      }
    } catch (e) {
      failed = String(e.message || e);
    }
    answer.classList.remove("pending");
    if (failed) {
      answer.classList.add("error");
      answer.textContent = (text ? text + "\n" : "") + "Error: " + failed;
    } else {
      answer.classList.add("done");
      history.push({ role: "user", content: question }, { role: "assistant", content: text });
      sessionStorage.setItem(storeKey, JSON.stringify(history));
    }
    button.disabled = false;
    field.focus();
  });
})();

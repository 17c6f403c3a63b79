// ZSL web UI. Served by every node (compiled into the binary); no library,
// no build step. Routes on location.pathname and renders from the JSON API.
// Chinese by default; the English toggle is remembered in localStorage.
"use strict";

const T = {
  zh: {
    sign_in: "登录", sign_out: "退出", signin_needed: "此内容需登录：请用监管或企业的密钥文件登录", public_view: "公开视图（登录可见数量）",
    title: "浙食链 · 食品安全追溯", nav_dashboard: "监管驾驶舱", nav_explorer: "区块浏览器", nav_verify: "证据核验", lookup: "查询",
    placeholder: "输入追溯码或主体码", loading: "加载中…", chain: "链", height: "区块高度", leader: "领导节点",
    validators: "验证节点", product: "产品", origin: "产地", coder: "首站赋码主体", upstream: "上游",
    custody: "流通记录", holders: "当前持有", certificates: "承诺达标合格证", tests: "快检", findings: "检查发现",
    recall: "该批次已召回", expired: "该批次已过期", green: "绿码", blocked: "快检不合格，已阻断",
    coded: "赋码", shipped: "出库", received: "入库确认", rejected: "拒收", notfound: "未找到",
    expiry: "保质期至", production: "生产日期", qty: "数量", late: "逾期", on_time: "按时", subject: "主体", district: "辖区", none: "无",
    unregistered: "未注册供应商", in_transit: "在途", trace_code: "追溯码", scan_me: "扫码查看本页",
    variety: "品种", key_variety: "重点品种", record: "上链记录", pass: "合格", fail: "不合格",
    subject_code: "主体码", subject_page: "主体信息", portrait: "企业画像", kind: "类型", key_subject: "重点主体",
    yes: "是", no: "否", registered: "注册上链", catalogue: "目录状态", catalogue_version: "品种目录版本",
    activity: "经营活动", active_days: "活跃天数", batches_coded: "赋码批次", kv_batches: "其中重点品种",
    shipments_out: "出库单", holdings: "持有批次", receipts: "入库确认", receipts_due: "应确认",
    on_time_rate: "按时入库确认率", late_n: "逾期确认", evidence: "区块链存证", evidence_certificate: "证据证书", trace_evidence: "核验整条追溯链（离线证据包）", pending: "待确认（未到期）", overdue: "逾期未确认", rejections: "拒收",
    rejections_made: "本主体拒收", rejections_received: "被下游拒收", recalls: "召回", period: "考核周期",
    from: "起", to: "止", apply: "确定", report: "食品安全专项信用报告", print_report: "打印信用报告",
    print_poster: "打印主体码", checkpoint: "依据检查点", block_hash: "区块哈希", tree_size: "树大小", tree_root: "树根",
    report_note: "本报告由浙食链节点根据截至上述检查点的链上记录生成；任何持有该检查点之前账本的人都能复算同一结果。",
    generated: "生成时间", rectified: "已整改", in_time: "按时", not_rectified: "未整改", deadline: "期限",
    incomplete: "列表已达上限，统计可能不完整", reason: "原因", role_coder: "赋码方", role_holder: "持有方",
    dashboard: "监管驾驶舱", district_table: "辖区考核表", rank: "排名", coding_rate: "赋码率", scanning_rate: "扫码率",
    ks_cov: "重点主体覆盖率", kv_cov: "重点品种覆盖率", rank_bonus: "排名加分", batches_n: "赋码批次 N",
    daily: "每日赋码 / 入库确认", daily_coded: "赋码批次", daily_due: "应入库确认", daily_on_time: "按时入库确认",
    map: "食安地图", metric: "指标", alerts: "预警", near_expiry: "临期预警", overdue_receipts: "逾期未入库确认",
    district_detail: "辖区明细", terms: "考核项", items: "明细记录", upcoming: "即将到期", all_districts: "全省",
    back: "返回", day: "日期", shipper: "发货方", receiver: "收货方", lines: "行数", affected: "受影响主体",
    explorer: "区块浏览器", head: "链头", recent_blocks: "最新区块", block: "区块", time: "时间", txs: "交易数",
    tx: "交易", type: "类型", account: "账户", index: "序号", leaf: "叶序号", older: "更早", newer: "更新",
    health: "健康状况", role: "角色", term: "任期", commit_index: "提交索引", head_age: "链头距今",
    healthy: "正常", stale: "无新区块", no_leader: "无领导节点", body: "记录内容", signer: "签名者",
    search_explorer: "区块高度 / 交易 ID / 追溯码", status: "状态", genesis_hash: "创世哈希", node: "节点",
    home_intro: "扫描商品或摊位上的二维码，或在上方输入追溯码。", no_data: "暂无数据", total: "合计",
    coverage_target: "目标", score_by: "按指标着色", more: "更多", leader_node: "领导", follower: "跟随",
    k_producer: "生产企业", k_first_importer: "入浙首站", k_wholesaler: "批发商", k_distributor: "经销商",
    k_farm_wholesale_market: "农批市场", k_farm_retail_market: "农贸市场", k_market_operator: "市场经营户",
    k_supermarket: "超市", k_school_canteen: "学校食堂", k_restaurant: "餐饮", k_caterer: "集体用餐配送",
    f_uncoded: "未赋码", f_off_chain: "未上链交易", f_other: "其他",
    r_quality: "质量问题", r_no_certificate: "无合格证", r_mismatch: "货单不符", r_expired: "过期",
    r_damaged: "破损", r_not_ordered: "未订货", r_other: "其他",
    i_lieu_coding_against: "被代赋码", i_lieu_coding_by: "代上游赋码", i_g_candidate: "省内未注册上游",
    i_h_candidate: "省外未注册上游", i_receipt: "入库确认", i_rejection: "拒收", i_uncoded: "未赋码发现",
    i_off_chain: "未上链发现", i_adjustment: "酌情加减分", i_rectification: "整改",
  },
  en: {
    sign_in: "Sign in", sign_out: "Sign out", signin_needed: "Sign in with your regulator or enterprise key file to see this", public_view: "Public view (sign in to see quantities)",
    title: "ZSL · food traceability", nav_dashboard: "Dashboard", nav_explorer: "Explorer", nav_verify: "Verify evidence", lookup: "Look up",
    placeholder: "Trace code or subject code", loading: "Loading…", chain: "Chain", height: "Height", leader: "Leader",
    validators: "Validators", product: "Product", origin: "Origin", coder: "First station", upstream: "Upstream",
    custody: "Chain of custody", holders: "Held by", certificates: "Compliance certificates", tests: "Rapid tests",
    findings: "Inspection findings", recall: "This batch is RECALLED", expired: "This batch has expired",
    green: "Green code", blocked: "Failed a rapid test: blocked", coded: "Coded", shipped: "Shipped",
    received: "Received", rejected: "Rejected", notfound: "Not found", expiry: "Expires", production: "Produced", qty: "Quantity",
    late: "late", on_time: "on time", subject: "Subject", district: "District", none: "none",
    unregistered: "unregistered supplier", in_transit: "In transit", trace_code: "Trace code", scan_me: "Scan to open this page",
    variety: "Variety", key_variety: "key variety", record: "Record", pass: "pass", fail: "fail",
    subject_code: "Subject code", subject_page: "Subject", portrait: "Enterprise portrait", kind: "Kind", key_subject: "Key subject",
    yes: "yes", no: "no", registered: "Registered", catalogue: "Catalogue status", catalogue_version: "Variety catalogue version",
    activity: "Activity", active_days: "Active days", batches_coded: "Batches coded", kv_batches: "of which key varieties",
    shipments_out: "Shipments", holdings: "Batches held", receipts: "Receipts", receipts_due: "Due",
    on_time_rate: "On-time receipt rate", late_n: "Answered late", evidence: "Evidence", evidence_certificate: "Evidence certificate", trace_evidence: "Verify the whole chain of custody (offline bundle)", pending: "Pending (not yet due)", overdue: "Overdue, unanswered", rejections: "Rejections",
    rejections_made: "Made by this subject", rejections_received: "Of its shipments", recalls: "Recalls", period: "Period",
    from: "From", to: "To", apply: "Apply", report: "Food-safety credit report", print_report: "Print credit report",
    print_poster: "Print subject code", checkpoint: "Checkpoint", block_hash: "Block hash", tree_size: "Tree size", tree_root: "Tree root",
    report_note: "Generated by a ZSL node from the records on chain up to the checkpoint above; anyone with the ledger up to it recomputes the same figures.",
    generated: "Generated", rectified: "rectified", in_time: "in time", not_rectified: "not rectified", deadline: "deadline",
    incomplete: "A list reached its cap; figures may be incomplete", reason: "Reason", role_coder: "coder", role_holder: "holder",
    dashboard: "Regulator dashboard", district_table: "District scores", rank: "Rank", coding_rate: "Coding rate", scanning_rate: "Scanning rate",
    ks_cov: "Key-subject coverage", kv_cov: "Key-variety coverage", rank_bonus: "Rank bonus", batches_n: "Batches coded N",
    daily: "Daily coding / receipts", daily_coded: "Batches coded", daily_due: "Receipts due", daily_on_time: "Receipts on time",
    map: "Food-safety map", metric: "Metric", alerts: "Alerts", near_expiry: "Near-expiry warnings", overdue_receipts: "Overdue receipts",
    district_detail: "District detail", terms: "Terms", items: "Records", upcoming: "Upcoming deadlines", all_districts: "Province",
    back: "Back", day: "Day", shipper: "Shipper", receiver: "Receiver", lines: "Lines", affected: "Affected subjects",
    explorer: "Explorer", head: "Chain head", recent_blocks: "Recent blocks", block: "Block", time: "Time", txs: "Txs",
    tx: "Transaction", type: "Type", account: "Account", index: "Index", leaf: "Leaf", older: "Older", newer: "Newer",
    health: "Health", role: "Role", term: "Term", commit_index: "Commit index", head_age: "Head age",
    healthy: "healthy", stale: "no new blocks", no_leader: "no leader", body: "Record", signer: "Signer",
    search_explorer: "Height / tx id / trace code", status: "Status", genesis_hash: "Genesis hash", node: "Node",
    home_intro: "Scan the QR code on a product or stall, or enter a trace code above.", no_data: "No data", total: "Total",
    coverage_target: "target", score_by: "Colour by", more: "more", leader_node: "leader", follower: "follower",
    k_producer: "producer", k_first_importer: "first importer", k_wholesaler: "wholesaler", k_distributor: "distributor",
    k_farm_wholesale_market: "farm wholesale market", k_farm_retail_market: "farm retail market", k_market_operator: "market operator",
    k_supermarket: "supermarket", k_school_canteen: "school canteen", k_restaurant: "restaurant", k_caterer: "caterer",
    f_uncoded: "uncoded", f_off_chain: "off-chain trade", f_other: "other",
    r_quality: "quality", r_no_certificate: "no certificate", r_mismatch: "mismatch", r_expired: "expired",
    r_damaged: "damaged", r_not_ordered: "not ordered", r_other: "other",
    i_lieu_coding_against: "coded in lieu (against)", i_lieu_coding_by: "coded in lieu (by)", i_g_candidate: "unregistered upstream, same district",
    i_h_candidate: "unregistered upstream, elsewhere", i_receipt: "receipt", i_rejection: "rejection", i_uncoded: "uncoded finding",
    i_off_chain: "off-chain finding", i_adjustment: "adjustment", i_rectification: "rectification",
  },
};

let lang = localStorage.getItem("zsl-lang") === "en" ? "en" : "zh";
const t = k => (T[lang] && T[lang][k]) || (T.en[k]) || k;
const tk = (prefix, v) => { const k = prefix + v; return (T[lang][k] || T.en[k]) ? t(k) : esc(v); };
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c]));
const $ = sel => document.querySelector(sel);
const when = ms => ms == null ? "" : new Date(ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: "Asia/Shanghai", hour12: false });
/** The natural day (Asia/Shanghai) of a time, as YYYY-MM-DD. */
const dayOf = ms => new Date(ms).toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });
const addDays = (d, n) => { const x = new Date(d + "T00:00:00Z"); x.setUTCDate(x.getUTCDate() + n); return x.toISOString().slice(0, 10); };
const rate = v => v == null ? "–" : Number(v).toFixed(2);
const short = h => h ? `<code title="${esc(h)}">${esc(String(h).slice(0, 12))}…</code>` : "";
const txLink = id => id ? `<a class="tx" href="/explorer?tx=${esc(id)}">${short(id)}</a>` : "";
const qrImg = (text, cls) => `<img class="${cls || ""}" alt="QR" src="/v1/qr?text=${encodeURIComponent(text)}">`;
const params = () => new URLSearchParams(location.search);

async function api(path) {
  const r = await fetch(path, { headers: ZslSession.authHeaders() });
  const body = await r.json().catch(() => ({}));
  if (r.status === 401 && ZslSession.current()) ZslSession.signOut(); // the session ended
  const message = r.status === 401 || r.status === 403 ? t("signin_needed") + ` (${body.code || r.status})` : body.message || r.statusText;
  if (!r.ok) throw Object.assign(new Error(message), { status: r.status, body });
  return body;
}

function showSession() {
  const s = ZslSession.current();
  $("#who").textContent = s ? `${s.account} · ${s.role}` : "";
  $("#signin").textContent = t(s ? "sign_out" : "sign_in");
}
$("#signin").onclick = async () => {
  if (ZslSession.current()) { await ZslSession.signOut(); document.body.dataset.ready = ""; route(); }
  else $("#keyfile").click();
};
$("#keyfile").onchange = async ev => {
  const f = ev.target.files[0];
  ev.target.value = "";
  if (!f) return;
  try { await ZslSession.signIn(await f.text()); document.body.dataset.ready = ""; route(); }
  catch (e) { $("#who").textContent = t("sign_in") + ": " + e.message; }
};

let regions = {}, districtList = [], statusCache = null;
async function loadCommon() {
  const [s, reg] = await Promise.all([api("/v1/status"), api("/v1/regions")]);
  statusCache = s;
  districtList = reg.districts;
  regions = Object.fromEntries(reg.districts.map(d => [d.code, d]));
  $("#foot").innerHTML = `${esc(s.chain_id)} · ${t("height")} ${s.height} · ${t("node")} ${s.node_id}`;
  return s;
}
const regionName = code => { const d = regions[code]; return d ? d.city + d.name : String(code ?? ""); };
const subjLink = (uscc, name) => uscc ? `<a class="subj" href="/s/${encodeURIComponent(uscc)}">${esc(name || uscc)}</a>` : "";

function applyLang() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("#lang").textContent = lang === "zh" ? "English" : "中文";
  document.querySelectorAll("[data-i18n]").forEach(e => e.textContent = t(e.dataset.i18n));
}
function setMain(html) { $("#main").innerHTML = html; }
function fail(e) { setMain(`<div class="card bad" id="error">${t("notfound")}: ${esc(e.message)}</div>`); }
function kv(rows) { return `<table>${rows.filter(Boolean).map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")}</table>`; }
function checkpointTable(c) {
  return kv([[t("height"), c.height], [t("block_hash"), `<code>${esc(c.block_hash)}</code>`], [t("tree_size"), c.tree_size],
    [t("tree_root"), `<code>${esc(c.tree_root)}</code>`], [t("time"), when(c.as_of_ms)]]);
}
function periodForm(from, to, extra) {
  return `<form class="row no-print" id="period"><b>${t("period")}</b>
    <label>${t("from")} <input type="date" name="from" value="${esc(from)}"></label>
    <label>${t("to")} <input type="date" name="to" value="${esc(to)}"></label>${extra || ""}
    <button type="submit">${t("apply")}</button></form>`;
}
function bindPeriod(keep) {
  const f = $("#period"); if (!f) return;
  f.onsubmit = ev => {
    ev.preventDefault();
    const q = params();
    q.set("from", f.from.value); q.set("to", f.to.value);
    (keep || []).forEach(k => { if (f[k]) { if (f[k].value) q.set(k, f[k].value); else q.delete(k); } });
    location.search = q.toString();
  };
}
/** The period from the URL, or by default the month up to the head's day. */
function periodOf(s, days) {
  const q = params();
  const head = dayOf(s.head_time_ms);
  const to = q.get("to") || head;
  const from = q.get("from") || (days ? addDays(to, -days + 1) : to.slice(0, 8) + "01");
  return { from, to };
}

// ---- home and look-up ------------------------------------------------------

function lookupBox(value) {
  return `<div class="card no-print"><form class="row" id="lookup">
    <input type="text" id="code" name="code" placeholder="${t("placeholder")}" value="${esc(value || "")}">
    <button type="submit">${t("lookup")}</button></form></div>`;
}
function bindLookup() {
  const f = $("#lookup"); if (!f) return;
  f.onsubmit = ev => {
    ev.preventDefault();
    const c = f.code.value.trim();
    // A bare USCC is a subject; anything else is a trace or subject code.
    if (/^[0-9A-HJ-NPQRTUWXY]{18}$/.test(c)) location.href = "/s/" + c;
    else if (c) location.href = "/t/" + encodeURIComponent(c);
  };
}
function statusCard(s) {
  return `<div class="card" id="status">${kv([[t("chain"), esc(s.chain_id)],
    [t("height"), `${s.height} ${short(s.head_hash)}`], [t("leader"), esc(s.leader ?? "-")],
    [t("validators"), s.validators.map(v => esc(v.node_id + " " + v.name)).join("<br>")]])}</div>`;
}
async function pageHome() {
  const s = await loadCommon();
  setMain(lookupBox("") + `<div class="card"><p>${t("home_intro")}</p>
    <div class="row"><a class="btn" href="/dashboard">${t("nav_dashboard")}</a><a class="btn alt" href="/explorer">${t("nav_explorer")}</a></div></div>` + statusCard(s));
  bindLookup();
}

// ---- consumer trace page /t/{code} --------------------------------------------

function renderBatch(tr) {
  const b = tr.batch, parts = [];
  const party = u => u ? subjLink(u, (tr.parties[u] && tr.parties[u].name) || u) : "";
  if (tr.recalled || b.recall) parts.push(`<div class="banner" id="recall">⚠ ${t("recall")}: ${esc(b.recall ? b.recall.reason : "")} <span class="mute" style="color:#fff">${when(b.recall && b.recall.origin.at_ms)}</span></div>`);
  if (tr.expired) parts.push(`<div class="banner warn">${t("expired")}</div>`);
  const up = tr.upstream ? (tr.upstream.kind === "registered" ? subjLink(tr.upstream.uscc, tr.upstream.subject ? tr.upstream.subject.name : tr.upstream.uscc)
    : `${esc(tr.upstream.name)} <span class="mute">(${t("unregistered")}, ${esc(regionName(tr.upstream.region))})</span>`) : t("none");
  parts.push(`<div class="card" id="product"><div class="qr"><div style="flex:1;min-width:220px"><h2>${esc(b.product_name)}</h2>
    <div>${b.blocked ? `<span class="bad">✘ ${t("blocked")}</span>` : b.green ? `<span class="ok">● ${t("green")}</span>` : ""}
      ${b.key_variety ? `<span class="pill">${t("key_variety")}</span>` : ""}</div>
    ${kv([[t("coder"), tr.coder ? subjLink(tr.coder.uscc, tr.coder.name) + ` <span class="mute">${esc(regionName(tr.coder.district))}</span>` : esc(b.coder)],
      [t("origin"), esc(regionName(b.origin_region))], [t("upstream"), up], [t("variety"), esc(b.variety)],
      b.quantity != null && [t("qty"), `${b.quantity} ${esc(b.unit)}`], [t("production"), esc(b.production_date)], [t("expiry"), esc(b.expiry_date)],
      [t("trace_code"), `<code>${esc(b.trace_code)}</code>`], [t("record"), txLink(b.coded.tx) + " " + when(b.coded.at_ms)]])}</div>
    <figure style="margin:0;text-align:center">${qrImg(location.origin + "/t/" + b.trace_code)}<figcaption class="mute">${t("scan_me")}</figcaption></figure></div></div>`);
  parts.push(`<div class="card"><h3>${t("certificates")}</h3>${tr.certificates.length ? tr.certificates.map(c =>
    `<div>✔ <b>${esc(c.certificate_id)}</b> ${esc(c.product_name)} · ${esc(c.issuer)} · ${when(c.issued.at_ms)} ${txLink(c.issued.tx)}</div>`).join("") : t("none")}
    <h3 style="margin-top:10px">${t("tests")}</h3>${tr.rapid_tests.length ? tr.rapid_tests.map(x =>
    `<div>${x.result === "pass" ? `<span class="ok">✔ ${t("pass")}</span>` : `<span class="bad">✘ ${t("fail")}</span>`} ${esc(x.item)} · ${esc(x.test_id)} · ${esc(x.tester)} · ${when(x.tested.at_ms)} ${txLink(x.tested.tx)}</div>`).join("") : t("none")}</div>`);
  parts.push(`<div class="card" id="custody"><h3>${t("custody")}</h3><ol class="custody">${tr.custody.map(e =>
    `<li class="ev-${esc(e.event)}"><b>${t(e.event)}</b> <span class="mute">${when(e.at_ms)}</span><br>
     ${party(e.from)}${e.from && e.to ? " → " : ""}${party(e.to)}${e.quantity != null ? ` · ${e.quantity} ${esc(b.unit)}` : ""}
     ${e.on_time === false ? `<span class="bad">(${t("late")})</span>` : e.on_time === true ? `<span class="ok">(${t("on_time")})</span>` : ""}
     <br>${txLink(e.tx)}</li>`).join("")}</ol></div>`);
  parts.push(`<div class="card"><h3>${t("holders")}</h3>${tr.holders.length ? tr.holders.map(h => `${subjLink(h.subject.uscc, h.subject.name)}${h.quantity != null ? ` · ${h.quantity} ${esc(b.unit)}` : ""}`).join("<br>") : t("none")}
    ${tr.in_transit ? `<p><b>${t("in_transit")}</b>: ${tr.in_transit} ${esc(b.unit)}</p>` : ""}</div>`);
  if (tr.public_view) parts.push(`<p class="mute" id="public-view">${t("public_view")}</p>`);
  else parts.push(`<p id="trace-evidence"><a href="/verify?trace=${encodeURIComponent(tr.trace_code)}">${t("trace_evidence")}</a></p>`);
  if (tr.findings.length) parts.push(`<div class="card"><h3>${t("findings")}</h3>${tr.findings.map(f => `${tk("f_", f.kind)} · ${subjLink(f.subject)} · ${when(f.found.at_ms)} ${txLink(f.found.tx)}`).join("<br>")}</div>`);
  return parts.join("");
}
async function pageTrace(code) {
  await loadCommon();
  setMain(lookupBox(code) + `<div class="card mute">${t("loading")}</div>`);
  bindLookup();
  try {
    const v = await api("/v1/trace/" + encodeURIComponent(code));
    if (v.kind === "subject") { location.replace("/s/" + encodeURIComponent(v.subject.subject.uscc)); return; }
    setMain(lookupBox(code) + renderBatch(v.trace));
    bindLookup();
  } catch (e) { setMain(lookupBox(code) + `<div class="card bad" id="error">${t("notfound")}: ${esc(e.message)}</div>`); bindLookup(); }
}

// ---- subject page /s/{uscc}: subject code, portrait, credit report -------------

/** The subject's public card (主体码 poster) for a caller who may not read its portrait. */
async function subjectCard(uscc, why) {
  const v = await api("/v1/subjects/" + encodeURIComponent(uscc));
  const sj = v.subject, codeUrl = location.origin + "/t/" + sj.subject_code;
  setMain(`<div class="card poster" id="subject-code"><div class="qr pos"><div style="flex:1;min-width:220px">
    <h2 id="subject-name">${esc(sj.name)}</h2>${kv([[t("subject_code"), `<code>${esc(sj.subject_code)}</code>`], ["USCC", `<code>${esc(sj.uscc)}</code>`],
      [t("district"), esc(regionName(sj.district))], [t("kind"), tk("k_", sj.kind)]])}</div>
    <figure style="margin:0;text-align:center">${qrImg(codeUrl)}<figcaption>${t("subject_code")} · ${esc(sj.name)}</figcaption></figure></div></div>
    <div class="card mute" id="signin-needed">${esc(why)}</div>`);
}

async function pageSubject(uscc) {
  const s = await loadCommon();
  const { from, to } = periodOf(s, 30);
  let p;
  try { p = await api(`/v1/views/subjects/${encodeURIComponent(uscc)}/portrait?from=${from}&to=${to}`); }
  catch (e) { if (e.status === 401 || e.status === 403) return subjectCard(uscc, e.message); throw e; }
  const sj = p.subject, a = p.activity, r = p.receipts;
  const codeUrl = location.origin + "/t/" + sj.subject_code;
  const yn = b => b ? `<span class="ok">${t("yes")}</span>` : t("no");
  const findings = p.findings.length ? `<table class="data"><tr><th>${t("findings")}</th><th>${t("time")}</th><th>${t("status")}</th><th class="hide-sm">${t("record")}</th></tr>${p.findings.map(f =>
    `<tr><td>${tk("f_", f.kind)} · ${esc(f.finding_id)}</td><td>${when(f.found.at_ms)}</td><td>${f.rectified ? (f.rectified.in_time ? `<span class="ok">${t("rectified")} (${t("in_time")})</span>` : `<span class="warn">${t("rectified")} (${t("late")})</span>`) : `<span class="bad">${t("not_rectified")}</span> <span class="mute">${t("deadline")} ${when(f.rectification_deadline_ms)}</span>`}</td><td class="hide-sm">${txLink(f.found.tx)}</td></tr>`).join("")}</table>` : t("none");
  const recalls = p.recalls.length ? `<table class="data">${p.recalls.map(x => `<tr><td><a href="/t/${esc(x.trace_code)}">${esc(x.product_name)}</a> <code>${esc(x.trace_code)}</code></td><td>${esc(x.reason)}</td><td>${t("role_" + x.role)}</td><td>${when(x.origin.at_ms)}</td></tr>`).join("")}</table>` : t("none");
  const rejections = p.rejections.list.length ? `<table class="data">${p.rejections.list.map(x => `<tr><td>${subjLink(x.shipper)} / ${esc(x.shipment_id)}</td><td>${tk("r_", x.reason)} ${esc(x.note || "")}</td><td>${when(x.origin.at_ms)}</td><td>${txLink(x.origin.tx)}</td></tr>`).join("")}</table>` : "";
  const kpis = `<div class="kpis">
    <div class="kpi"><span>${t("on_time_rate")}</span><b id="on-time-rate">${r.on_time_rate == null ? "–" : rate(r.on_time_rate) + "%"}</b><span class="mute">${r.on_time}/${r.due}</span></div>
    <div class="kpi"><span>${t("batches_coded")}</span><b>${a.batches_coded}</b><span class="mute">${t("kv_batches")} ${a.key_variety_batches_coded}</span></div>
    <div class="kpi"><span>${t("active_days")}</span><b>${a.active_days}</b><span class="mute">/ ${a.period_days}</span></div>
    <div class="kpi"><span>${t("findings")} / ${t("recalls")}</span><b>${p.findings.length} / ${p.recalls.length}</b></div></div>`;
  const body = `
    ${kv([[t("kind"), tk("k_", sj.kind)], [t("district"), esc(regionName(sj.district))], ["USCC", `<code>${esc(sj.uscc)}</code>`],
      [t("key_subject"), yn(p.catalogue.key_subject)], [t("registered"), when(sj.registered.at_ms) + " " + txLink(sj.registered.tx)],
      [t("catalogue_version"), esc(p.catalogue.catalogue_version ?? "–")],
      [t("variety"), p.catalogue.varieties.map(v => esc(v.variety) + (v.key_variety ? ` <span class="pill">${t("key_variety")}</span>` : "")).join(" ") || t("none")]])}
    <h3 style="margin-top:12px">${t("activity")}</h3>${kpis}
    <h3 style="margin-top:12px">${t("receipts")}</h3>${kv([[t("receipts_due"), r.due], [t("on_time"), r.on_time], [t("late_n"), r.late],
      [t("overdue"), r.overdue_unanswered ? `<span class="bad">${r.overdue_unanswered}</span>` : 0], [t("pending"), r.pending], [t("shipments_out"), a.shipments_out], [t("holdings"), a.holdings]])}
    <h3 style="margin-top:12px">${t("rejections")}</h3>${kv([[t("rejections_made"), p.rejections.made], [t("rejections_received"), p.rejections.received]])}${rejections}
    <h3 style="margin-top:12px">${t("findings")}</h3>${findings}
    <h3 style="margin-top:12px">${t("recalls")}</h3>${recalls}
    ${p.complete ? "" : `<p class="warn">${t("incomplete")}</p>`}`;
  setMain(`
    <div class="card poster" id="subject-code"><div class="qr pos"><div style="flex:1;min-width:220px">
      <h2 id="subject-name">${esc(sj.name)}</h2>${kv([[t("subject_code"), `<code>${esc(sj.subject_code)}</code>`], ["USCC", `<code>${esc(sj.uscc)}</code>`],
        [t("district"), esc(regionName(sj.district))], [t("kind"), tk("k_", sj.kind)]])}
      <div class="row no-print" style="margin-top:8px"><button type="button" id="print-poster" class="alt">${t("print_poster")}</button>
      <button type="button" id="print-report">${t("print_report")}</button></div></div>
      <figure style="margin:0;text-align:center">${qrImg(codeUrl)}<figcaption>${t("subject_code")} · ${esc(sj.name)}</figcaption></figure></div></div>
    <div class="card no-print">${periodForm(from, to)}</div>
    <div class="card report" id="portrait">
      <div class="print-only"><h1>${t("report")}</h1><p>${esc(sj.name)} · USCC ${esc(sj.uscc)}</p></div>
      <h2 class="no-print">${t("portrait")}</h2>
      <p><b>${t("period")}</b>: ${esc(p.period.from)} – ${esc(p.period.to)}</p>
      ${body}
      <h3 style="margin-top:12px">${t("checkpoint")}</h3><div id="checkpoint">${checkpointTable(p.checkpoint)}</div>
      <p class="mute">${t("report_note")} ${t("generated")}: ${when(Date.now())}</p>
    </div>`);
  bindPeriod();
  const printAs = cls => { document.body.classList.add(cls); window.print(); document.body.classList.remove(cls); };
  $("#print-report").onclick = () => printAs("printing-report");
  $("#print-poster").onclick = () => printAs("printing-poster");
}

// ---- regulator dashboard /dashboard --------------------------------------------

const METRICS = {
  coding: d => d.coding.rate, scanning: d => d.scanning.rate,
  ks: d => d.key_subject_coverage.rate, kv: d => d.key_variety_coverage.rate,
};
const METRIC_LABEL = { coding: "coding_rate", scanning: "scanning_rate", ks: "ks_cov", kv: "kv_cov" };
function colourOf(v) {
  if (v == null) return "#d5d9d7";
  if (v >= 100) return "#1f7a4d";
  if (v >= 95) return "#5fa47a";
  if (v >= 90) return "#a9cf8a";
  if (v >= 80) return "#f2c14e";
  return "#d9534f";
}
function legend() {
  return `<div class="legend">${[["≥100", 100], ["95–100", 95], ["90–95", 90], ["80–90", 80], ["<80", 0], [t("no_data"), null]].map(([l, v]) =>
    `<span><i style="background:${colourOf(v)}"></i>${l}</span>`).join("")}</div>`;
}
/** Districts on a grid by their seat's longitude/latitude: each takes the free
 * cell nearest its projected position, so the map keeps Zhejiang's shape
 * without overlapping tiles. */
function districtGrid(scores, metric, selected) {
  const ds = districtList.filter(d => typeof d.lon === "number" && typeof d.lat === "number");
  if (!ds.length) return `<p class="mute">${t("no_data")}</p>`;
  const cols = 16, rows = 14, cell = 44;
  const lon0 = Math.min(...ds.map(d => d.lon)), lon1 = Math.max(...ds.map(d => d.lon));
  const lat0 = Math.min(...ds.map(d => d.lat)), lat1 = Math.max(...ds.map(d => d.lat));
  const taken = new Set(), out = [];
  const sorted = [...ds].sort((a, b) => a.code.localeCompare(b.code));
  for (const d of sorted) {
    const x = Math.round((d.lon - lon0) / ((lon1 - lon0) || 1) * (cols - 1));
    const y = Math.round((lat1 - d.lat) / ((lat1 - lat0) || 1) * (rows - 1));
    let best = null;
    for (let r = 0; r < Math.max(cols, rows) && !best; r++)
      for (let dy = -r; dy <= r && !best; dy++)
        for (let dx = -r; dx <= r && !best; dx++) {
          const cx = x + dx, cy = y + dy;
          if (cx < 0 || cy < 0 || cx >= cols || cy >= rows || taken.has(cx + "," + cy)) continue;
          best = [cx, cy];
        }
    if (!best) continue;
    taken.add(best.join(","));
    const sc = scores[d.code];
    const v = sc ? METRICS[metric](sc) : null;
    out.push(`<g class="district" data-code="${esc(d.code)}"><title>${esc(d.city + d.name)}: ${rate(v)}</title>
      <rect x="${best[0] * cell}" y="${best[1] * cell}" width="${cell - 2}" height="${cell - 2}" rx="4" fill="${colourOf(v)}"${d.code === selected ? ' style="stroke:#222;stroke-width:3"' : ""}></rect>
      <text x="${best[0] * cell + (cell - 2) / 2}" y="${best[1] * cell + 26}" text-anchor="middle">${esc(d.name.slice(0, 2))}</text></g>`);
  }
  return `<svg class="map" id="map" viewBox="0 0 ${cols * cell} ${rows * cell}" role="img">${out.join("")}</svg>${legend()}`;
}
/** Daily counts as an inline SVG chart: coded batches as bars, receipts due and on time as lines. */
function dailyChart(days) {
  if (!days.length) return t("no_data");
  const W = 720, H = 220, L = 40, B = 24, top = 10;
  const max = Math.max(1, ...days.map(d => Math.max(d.coded, d.receipts_due, d.receipts_on_time)));
  const bw = (W - L - 10) / days.length;
  const y = v => top + (H - B - top) * (1 - v / max);
  const xc = i => L + bw * i + bw / 2;
  const bars = days.map((d, i) => `<rect x="${L + bw * i + bw * 0.15}" y="${y(d.coded)}" width="${bw * 0.7}" height="${H - B - y(d.coded)}" fill="#a9cf8a"><title>${d.day} ${t("daily_coded")}: ${d.coded}</title></rect>`).join("");
  const line = (k, c) => `<polyline fill="none" stroke="${c}" stroke-width="2" points="${days.map((d, i) => `${xc(i)},${y(d[k])}`).join(" ")}"></polyline>`
    + days.map((d, i) => `<circle cx="${xc(i)}" cy="${y(d[k])}" r="2.5" fill="${c}"><title>${d.day}: ${d[k]}</title></circle>`).join("");
  const ticks = [0, 0.5, 1].map(f => `<text x="${L - 4}" y="${y(max * f) + 4}" text-anchor="end">${Math.round(max * f)}</text><line x1="${L}" x2="${W - 10}" y1="${y(max * f)}" y2="${y(max * f)}" stroke="#eee"></line>`).join("");
  const every = Math.max(1, Math.ceil(days.length / 8));
  const labels = days.map((d, i) => i % every ? "" : `<text x="${xc(i)}" y="${H - 6}" text-anchor="middle">${d.day.slice(5)}</text>`).join("");
  const total = k => days.reduce((s, d) => s + d[k], 0);
  return `<svg class="chart" id="daily-chart" viewBox="0 0 ${W} ${H}">${ticks}${bars}${line("receipts_due", "#1f5fa8")}${line("receipts_on_time", "#1f7a4d")}${labels}</svg>
    <div class="legend"><span><i style="background:#a9cf8a"></i>${t("daily_coded")} (${total("coded")})</span><span><i style="background:#1f5fa8"></i>${t("daily_due")} (${total("receipts_due")})</span><span><i style="background:#1f7a4d"></i>${t("daily_on_time")} (${total("receipts_on_time")})</span></div>`;
}
function alertsCard(al) {
  const rec = al.recalls.map(x => `<tr><td><a href="/t/${esc(x.trace_code)}">${esc(x.product_name)}</a><br><code>${esc(x.trace_code)}</code></td><td>${esc(x.recall.reason)}</td><td>${esc(regionName(x.district))}</td><td>${when(x.recall.origin.at_ms)} ${txLink(x.recall.origin.tx)}</td></tr>`).join("");
  const near = al.near_expiry.map(x => `<tr><td><a href="/t/${esc(x.trace_code)}">${esc(x.product_name)}</a><br><code>${esc(x.trace_code)}</code></td><td>${esc(x.expiry_date)}</td><td>${subjLink(x.coder)}</td><td>${x.quantity} ${esc(x.unit)}</td></tr>`).join("");
  const over = al.overdue_receipts.map(x => `<tr><td>${subjLink(x.shipper)} / ${esc(x.shipment_id)}</td><td>${subjLink(x.to)}</td><td>${esc(regionName(x.receiver_district))}</td><td class="bad">${when(x.receipt_deadline_ms)}</td><td>${txLink(x.shipped.tx)}</td></tr>`).join("");
  return `<div class="card" id="alerts"><h3>${t("alerts")}</h3>
    <h4>${t("recalls")} (${al.recalls_total})</h4>${rec ? `<table class="data" id="recall-alerts">${rec}</table>` : t("none")}
    <h4>${t("near_expiry")} (${al.near_expiry_total}, ≤ ${al.near_expiry_days}d)</h4>${near ? `<table class="data">${near}</table>` : t("none")}
    <h4>${t("overdue_receipts")} (${al.overdue_receipts_total})</h4>${over ? `<table class="data" id="overdue">${over}</table>` : t("none")}
    ${al.complete ? "" : `<p class="warn">${t("incomplete")}</p>`}</div>`;
}
async function pageDashboard() {
  const s = await loadCommon();
  const q = params();
  const { from, to } = periodOf(s);
  const district = q.get("district");
  const metric = METRICS[q.get("metric")] ? q.get("metric") : "coding";
  setMain(`<div class="card mute">${t("loading")}</div>`);
  const dq = district ? `&district=${encodeURIComponent(district)}` : "";
  const [sc, daily, al, detail] = await Promise.all([
    api(`/v1/scores?from=${from}&to=${to}`), api(`/v1/views/daily?from=${from}&to=${to}${dq}`),
    api(`/v1/views/alerts?${dq.slice(1)}`), district ? api(`/v1/scores/${encodeURIComponent(district)}?from=${from}&to=${to}`) : null]);
  const rows = Object.entries(sc.districts).sort((a, b) => a[1].rank - b[1].rank || a[0].localeCompare(b[0]));
  const table = `<table class="data" id="district-table"><thead><tr><th class="num">${t("rank")}</th><th>${t("district")}</th><th class="num">N</th>
    <th class="num">${t("coding_rate")}</th><th class="num">${t("scanning_rate")}</th><th class="num hide-sm">${t("ks_cov")}</th><th class="num hide-sm">${t("kv_cov")}</th><th class="num hide-sm">${t("rank_bonus")}</th></tr></thead><tbody>
    ${rows.map(([code, d]) => `<tr class="click" data-code="${esc(code)}"><td class="num">${d.rank}</td><td><a class="district-link" href="/dashboard?from=${from}&to=${to}&district=${esc(code)}">${esc(regionName(code))}</a></td>
      <td class="num">${d.N}</td><td class="num">${rate(d.coding.rate)}</td><td class="num">${rate(d.scanning.rate)}</td>
      <td class="num hide-sm">${rate(d.key_subject_coverage.rate)}</td><td class="num hide-sm">${rate(d.key_variety_coverage.rate)}</td><td class="num hide-sm">${d.f}</td></tr>`).join("")}</tbody></table>`;
  const metricSel = `<label>${t("score_by")} <select id="metric">${Object.keys(METRICS).map(m => `<option value="${m}" ${m === metric ? "selected" : ""}>${t(METRIC_LABEL[m])}</option>`).join("")}</select></label>`;
  let detailHtml = "";
  if (detail) {
    const d = detail.score;
    const items = detail.items.slice(0, 200).map(it => `<tr><td>${esc(it.day)}</td><td>${tk("i_", it.kind)}</td>
      <td>${subjLink(it.coder || it.receiver || it.subject || it.shipper)}</td><td>${it.batches ?? it.lines ?? ""}</td><td>${txLink(it.tx_id || it.shipment_tx_id)}</td></tr>`).join("");
    detailHtml = `<div class="card" id="district-detail"><div class="row" style="justify-content:space-between"><h3>${t("district_detail")}: ${esc(regionName(district))}</h3>
      <a class="btn alt no-print" href="/dashboard?from=${from}&to=${to}">${t("back")}</a></div>
      <div class="grid2"><div>${kv([[t("rank"), d.rank], ["N", d.N], [t("coding_rate"), `${rate(d.coding.rate)} <span class="mute">a=${d.coding.a} b=${d.coding.b} β<sub>c</sub>=${d.coding.beta_c} g=${d.coding.g} h=${d.coding.h}</span>`],
        [t("scanning_rate"), `${rate(d.scanning.rate)} <span class="mute">a=${d.scanning.a} b=${d.scanning.b} c=${d.scanning.c}</span>`]])}</div>
      <div>${kv([[t("ks_cov"), `${rate(d.key_subject_coverage.rate)} <span class="mute">${d.key_subject_coverage.active}/${d.key_subject_coverage.catalogued}, ${t("coverage_target")} ${d.key_subject_coverage.target}</span>`],
        [t("kv_cov"), `${rate(d.key_variety_coverage.rate)} <span class="mute">${t("coverage_target")} ${d.key_variety_coverage.target}</span>`], [t("rank_bonus"), d.f]])}</div></div>
      <h4>${t("items")} (${detail.items.length})</h4>${items ? `<table class="data" id="items"><tr><th>${t("day")}</th><th>${t("type")}</th><th>${t("subject")}</th><th>#</th><th>${t("record")}</th></tr>${items}</table>` : t("none")}
      <h4>${t("upcoming")}</h4>${detail.upcoming_deadlines.length ? detail.upcoming_deadlines.map(u => `${tk("i_", u.kind)} · ${subjLink(u.subject)} · ${when(u.due_ms)} ${txLink(u.tx_id)}`).join("<br>") : t("none")}</div>`;
  }
  setMain(`<div class="card no-print">${periodForm(from, to)}</div>
    <div class="card"><h2>${t("dashboard")} <span class="mute">${esc(from)} – ${esc(to)}${district ? " · " + esc(regionName(district)) : " · " + t("all_districts")}</span></h2>
      <p class="mute">${t("checkpoint")}: ${t("height")} ${sc.checkpoint.height} ${short(sc.checkpoint.block_hash)} · ${when(sc.as_of_ms)}</p></div>
    ${detailHtml}
    <div class="card"><h3>${t("daily")}</h3>${dailyChart(daily.days)}</div>
    <div class="grid2"><div class="card"><div class="row" style="justify-content:space-between"><h3>${t("map")}</h3>${metricSel}</div>${districtGrid(sc.districts, metric, district)}</div>
    ${alertsCard(al)}</div>
    <div class="card"><h3>${t("district_table")}</h3>${table}</div>`);
  bindPeriod();
  const go = code => { const p2 = params(); p2.set("from", from); p2.set("to", to); p2.set("district", code); location.search = p2.toString(); };
  document.querySelectorAll("#district-table tr.click").forEach(tr => tr.addEventListener("click", ev => { if (ev.target.tagName !== "A") go(tr.dataset.code); }));
  document.querySelectorAll("#map g.district").forEach(g => g.addEventListener("click", () => go(g.dataset.code)));
  $("#metric").onchange = ev => { const p2 = params(); p2.set("metric", ev.target.value); location.search = p2.toString(); };
}

// ---- explorer /explorer ----------------------------------------------------------

function healthOf(s) {
  if (s.leader == null) return `<span class="bad">${t("no_leader")}</span>`;
  const age = Math.max(0, Date.now() - s.head_time_ms);
  return `<span class="ok">${t("healthy")}</span> <span class="mute">${t("head_age")} ${Math.round(age / 1000)}s</span>`;
}
async function explorerHome(s) {
  const before = params().get("before");
  const bl = await api(`/v1/views/blocks?limit=20${before ? "&before=" + encodeURIComponent(before) : ""}`);
  const vals = s.validators.map(v => `<tr><td>${v.node_id}</td><td>${esc(v.name)}</td><td><code>${esc(v.public_key.slice(0, 16))}…</code></td>
    <td>${v.node_id === s.leader ? `<span class="pill ok">${t("leader_node")}</span>` : `<span class="pill">${t("follower")}</span>`}</td>
    <td>${v.node_id === s.node_id ? healthOf(s) : s.leader != null ? `<span class="mute">${t("term")} ${s.term}</span>` : ""}</td></tr>`).join("");
  return `<div class="grid2"><div class="card" id="head"><h3>${t("head")}</h3>${kv([[t("height"), `<a href="/explorer?block=${s.height}">${s.height}</a>`],
      [t("block_hash"), `<code>${esc(s.head_hash)}</code>`], [t("time"), when(s.head_time_ms)], [t("tree_size"), s.tree_size],
      [t("tree_root"), `<code>${esc(s.tree_root)}</code>`], [t("genesis_hash"), `<code>${esc(s.genesis_hash)}</code>`]])}</div>
    <div class="card" id="validators"><h3>${t("validators")} · ${t("health")}</h3>
      ${kv([[t("node"), s.node_id], [t("role"), s.role === "leader" ? t("leader_node") : s.role === "follower" ? t("follower") : esc(s.role)], [t("leader"), esc(s.leader ?? "-")], [t("term"), s.term], [t("commit_index"), esc(s.commit_index ?? "-")], [t("health"), healthOf(s)]])}
      <table class="data" style="margin-top:8px"><tr><th>#</th><th>${t("node")}</th><th class="hide-sm">key</th><th>${t("role")}</th><th>${t("health")}</th></tr>${vals}</table></div></div>
    <div class="card"><h3>${t("recent_blocks")}</h3><table class="data" id="blocks"><tr><th class="num">${t("height")}</th><th>${t("block_hash")}</th><th>${t("time")}</th><th class="num">${t("txs")}</th></tr>
      ${bl.blocks.map(b => `<tr><td class="num"><a class="block-link" href="/explorer?block=${b.height}">${b.height}</a></td><td>${short(b.hash)}</td><td>${when(b.time_ms)}</td><td class="num">${b.tx_count}</td></tr>`).join("")}</table>
      ${bl.next_before != null ? `<p><a href="/explorer?before=${bl.next_before + 1}">${t("older")} →</a></p>` : ""}</div>`;
}
async function explorerBlock(h) {
  const off = Number(params().get("offset") || 0);
  const [b, txs] = await Promise.all([api(`/v1/blocks/${encodeURIComponent(h)}`), api(`/v1/views/blocks/${encodeURIComponent(h)}/txs?offset=${off}&limit=100`)]);
  const hd = b.header;
  const nav = [hd.height > 0 ? `<a href="/explorer?block=${hd.height - 1}">← ${hd.height - 1}</a>` : "", `<a href="/explorer?block=${hd.height + 1}">${hd.height + 1} →</a>`].join(" · ");
  const more = off + 100 < txs.tx_count ? `<a href="/explorer?block=${hd.height}&offset=${off + 100}">${t("more")} →</a>` : "";
  return `<div class="card" id="block"><h3>${t("block")} ${hd.height}</h3>${kv([[t("block_hash"), `<code>${esc(b.hash)}</code>`], ["prev", `<code>${esc(hd.prev_hash)}</code>`],
      [t("time"), when(hd.time_ms)], [t("txs"), hd.tx_count], [t("tree_size"), hd.tree_size], [t("tree_root"), `<code>${esc(hd.tree_root)}</code>`],
      ["state", `<code>${esc(hd.state_hash)}</code>`], ["validators", `<code>${esc(hd.validators_hash)}</code>`]])}<p>${nav}</p></div>
    <div class="card"><h3>${t("txs")} (${txs.tx_count})</h3><table class="data" id="block-txs"><tr><th class="num">${t("index")}</th><th>${t("tx")}</th><th>${t("type")}</th><th>${t("account")}</th></tr>
      ${txs.txs.map(x => `<tr><td class="num">${x.index ?? ""}</td><td>${txLink(x.tx_id)}</td><td>${esc(x.type || "")}</td><td>${esc(x.account || "")}</td></tr>`).join("")}</table><p>${more}</p></div>`;
}
async function explorerTx(id) {
  const x = await api(`/v1/tx/${encodeURIComponent(id)}`);
  const body = x.tx && x.tx.body ? x.tx.body : x.tx;
  const tc = x.trace_code;
  return `<div class="card" id="tx"><h3>${t("tx")}</h3>${kv([["ID", `<code>${esc(x.tx_id)}</code>`], [t("status"), `<span class="ok">${esc(x.status)}</span>`],
      [t("type"), `<b id="tx-type">${esc(x.type)}</b>`], [t("account"), /^[0-9A-Z]{18}$/.test(x.account) ? subjLink(x.account) : esc(x.account)],
      [t("block"), `<a href="/explorer?block=${x.height}">${x.height}</a> · ${t("index")} ${x.index} · ${t("leaf")} ${x.leaf_index}`],
      [t("block_hash"), `<code>${esc(x.block_hash)}</code>`], [t("time"), when(x.block_time_ms)],
      tc ? [t("trace_code"), `<a href="/t/${esc(tc)}">${esc(tc)}</a>`] : null,
      [t("evidence"), `<a href="/v1/evidence/${esc(x.tx_id)}/certificate">${t("evidence_certificate")}</a> · <a href="/v1/evidence/${esc(x.tx_id)}">JSON</a>`]])}
    <h4>${t("body")}</h4><pre id="tx-body">${esc(JSON.stringify(body, null, 2))}</pre>
    ${x.tx && x.tx.signer ? `<p class="mute">${t("signer")}: <code>${esc(JSON.stringify(x.tx.signer))}</code></p>` : ""}</div>`;
}
async function pageExplorer() {
  const s = await loadCommon();
  const q = params();
  const search = `<div class="card no-print"><form class="row" id="xsearch"><input type="text" name="q" placeholder="${t("search_explorer")}">
    <button type="submit">${t("lookup")}</button><a class="btn alt" href="/explorer">${t("head")}</a></form></div>`;
  setMain(search + `<div class="card mute">${t("loading")}</div>`);
  let html;
  try {
    if (q.get("tx")) html = await explorerTx(q.get("tx"));
    else if (q.get("block")) html = await explorerBlock(q.get("block"));
    else html = await explorerHome(s);
  } catch (e) { html = `<div class="card bad" id="error">${t("notfound")}: ${esc(e.message)}</div>`; }
  setMain(search + html);
  $("#xsearch").onsubmit = ev => {
    ev.preventDefault();
    const v = ev.target.q.value.trim();
    if (/^\d+$/.test(v)) location.href = "/explorer?block=" + v;
    else if (/^[0-9a-fA-F]{64}$/.test(v)) location.href = "/explorer?tx=" + v.toLowerCase();
    else if (v) location.href = "/t/" + encodeURIComponent(v);
  };
}

// ---- router ------------------------------------------------------------------------

async function route() {
  applyLang();
  showSession();
  const path = location.pathname;
  let m;
  try {
    if ((m = path.match(/^\/t\/(.+)$/))) await pageTrace(decodeURIComponent(m[1]));
    else if ((m = path.match(/^\/s\/(.+)$/))) await pageSubject(decodeURIComponent(m[1]));
    else if (path === "/dashboard") await pageDashboard();
    else if (path === "/explorer") await pageExplorer();
    else await pageHome();
    document.body.dataset.ready = "1";
  } catch (e) { fail(e); document.body.dataset.ready = "error"; }
}
$("#lang").onclick = () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("zsl-lang", lang); document.body.dataset.ready = ""; route(); };
route();

// The web terminal's own labels in Chinese and English. The terminal's display lines, states'
// messages and errors come from the till already bilingual ("中文 / English") and are shown as
// they are, so they read the same as on the printed slips.

const LABELS = {
  logout: ["退出", "Sign out"],
  sign_in: ["登录", "Sign in"],
  operator_id: ["操作员", "Operator"],
  pin: ["密码", "PIN"],
  tab_sale: ["收款", "Sale"],
  tab_pending: ["待确认", "Pending QR"],
  tab_supervisor: ["主管", "Supervisor"],
  tab_devices: ["模拟设备", "Devices"],
  merchant_copy: ["商户存根", "Merchant copy"],
  cardholder_copy: ["持卡人存根", "Cardholder copy"],
  pay_card: ["刷卡", "Card"],
  pay_qr: ["扫顾客码", "Customer QR"],
  pay_qr_merchant: ["出示收款码", "Our QR code"],
  cancel: ["取消", "Cancel"],
  reprint: ["重打印", "Reprint"],
  pending_title: ["待确认的扫码支付", "QR payments pending confirmation"],
  refresh: ["刷新", "Refresh"],
  order: ["订单", "Order"],
  amount: ["金额", "Amount"],
  status: ["状态", "Status"],
  when: ["时间", "When"],
  trace: ["凭证号", "Trace"],
  void: ["撤销", "Void"],
  refund: ["退货", "Refund"],
  settle: ["结算", "Settle"],
  exceptions: ["异常报告", "Exception report"],
  journal: ["本批交易", "Batch"],
  cancellations: ["取消记录", "Cancellations"],
  operators: ["操作员管理", "Operators"],
  drop: ["丢弃应答", "Drop the answer"],
  fault_next: ["下一应答出错", "Fault next answer"],
  op_id: ["操作员编号", "Operator id"],
  op_role: ["角色", "Role"],
  op_new_pin: ["新密码", "New PIN"],
  op_add: ["添加", "Add"],
  op_disable: ["停用", "Disable"],
  op_enable: ["启用", "Enable"],
  op_reset: ["重置密码", "Reset PIN"],
  op_list: ["列表", "List"],
  reason_operators: ["操作员管理", "operator management"],
  card_reader: ["读卡器", "Card reader"],
  insert: ["插卡", "Insert"],
  swipe: ["刷卡", "Swipe"],
  tap: ["挥卡", "Tap"],
  remove: ["拔卡", "Remove"],
  pin_manual: ["在此输入密码", "Type the PIN here"],
  scanner: ["扫码枪", "Scanner"],
  scan: ["扫码", "Scan"],
  scan_receipt: ["扫最近的签购单", "Scan the last receipt"],
  printer: ["打印机", "Printer"],
  paper_out: ["缺纸", "Paper out"],
  near_end: ["纸将尽", "Near end"],
  cover_open: ["开盖", "Cover open"],
  refill: ["装纸/恢复", "Refill / clear"],
  host: ["主机", "Host"],
  latency: ["延迟(秒)", "Latency (s)"],
  set: ["设置", "Set"],
  silent: ["不应答", "Silent"],
  decline_code: ["拒绝码", "Decline code"],
  decline: ["拒绝下一笔", "Decline next"],
  clear: ["清除", "Clear"],
  signature_pad: ["电子签名板", "Signature pad"],
  wallet: ["钱包", "Wallet"],
  pay_shown: ["顾客扫收款码付款", "Customer pays our code"],
  sig_send: ["签名", "Sign"],
  sig_ok: ["确认键", "OK key"],
  supervisor_pin: ["主管授权", "Supervisor PIN"],
  supervisor: ["主管", "Supervisor"],
  reason: ["原因", "Reason"],
  ok: ["确定", "OK"],
  approved: ["交易成功", "APPROVED"],
  declined: ["交易拒绝", "DECLINED"],
  cancelled: ["已取消", "CANCELLED"],
  reversed: ["已冲正，未扣款", "REVERSED, NOT CHARGED"],
  pending_confirmation: ["待确认", "PENDING CONFIRMATION"],
  voided: ["已撤销", "VOIDED"],
  refunded: ["已退货", "REFUNDED"],
  in_progress: ["处理中", "IN PROGRESS"],
  enter_amount: ["请输入金额", "Enter an amount"],
  reason_void: ["顾客要求撤销", "customer asked to void"],
  reason_refund: ["顾客退货", "customer returned the goods"],
  reason_reprint: ["顾客要求重打印", "customer asked for a copy"],
  reason_settle: ["日终结算", "end of day"],
  nothing_pending: ["没有待确认的交易", "nothing pending"],
  reprinted: ["已重打印", "reprinted"],
};

let lang = localStorage.getItem("opentill.lang") || "en";

export function t(key) {
  const pair = LABELS[key];
  if (!pair) return key;
  return lang === "zh" ? pair[0] : pair[1];
}

export function language() {
  return lang;
}

export function setLanguage(next) {
  lang = next === "zh" ? "zh" : "en";
  localStorage.setItem("opentill.lang", lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  const button = document.getElementById("lang");
  if (button) button.textContent = lang === "zh" ? "English" : "中文";
}

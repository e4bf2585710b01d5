// The page every webview starts from: a strict Content-Security-Policy (nothing remote, scripts only with this
// page's nonce, styles and fonts only from the extension), the icon font, the stylesheet and the script, all through
// asWebviewUri.
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';

export function nonce(): string {
  return crypto.randomBytes(18).toString('base64url');
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: { title: string; script: string; style: string; body: string }): string {
  const n = nonce();
  const scriptUri = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', page.script));
  const styleUri = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', page.style));
  // VS Code's own icons (codicons) for buttons, as the editor draws them.
  const iconsUri = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', 'codicon.css'));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `script-src 'nonce-${n}'`,
    `img-src ${webview.cspSource} data:`,
    `font-src ${webview.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${iconsUri.toString()}">
<link rel="stylesheet" href="${styleUri.toString()}">
<title>${page.title}</title>
</head>
<body>
${page.body}
<script nonce="${n}" src="${scriptUri.toString()}"></script>
</body>
</html>`;
}

/** Where webviews may load from: the extension's bundles and stylesheets only. */
export function localResourceRoots(extensionUri: vscode.Uri): vscode.Uri[] {
  return [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')];
}

/** File names mailferry keeps in an archive's root (dotfiles: Dovecot and mutt ignore them). */
export const STATE_FILE = '.mailferry-state.json';
export const LOCK_FILE = '.mailferry.lock';
/** Names of folders whose place does not read back as their name (state/names-file.ts). */
export const NAMES_FILE = '.mailferry-names.json';

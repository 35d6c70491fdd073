// Scratch: run a command in a default sandbox over the current directory.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ws = std::env::current_dir().unwrap();
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let sb = match palisade::Sandbox::new(palisade::Policy::new(&ws, home.as_deref())) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("palisade: {e}");
            std::process::exit(e.exit_code())
        }
    };
    match sb.command(&args[0]).args(&args[1..]).status() {
        Ok(st) => std::process::exit(st.shell_code()),
        Err(e) => {
            eprintln!("palisade: {e}");
            std::process::exit(e.exit_code())
        }
    }
}

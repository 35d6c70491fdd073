//! Tests of records_folder_trusted (kept in their own file so setup_plan.rs stays short).

use super::*;
use crate::facts::DirFact;

#[test]
fn only_an_administrators_folder_is_trusted() {
    let ok = DirFact {
        path: WinPath::parse("C:\\ProgramData\\Palisade").unwrap(),
        owner: Sid::administrators(),
        protected: true,
        explicit_aces: vec![
            ace_sid(Sid::system(), Rights::FullControl),
            ace_sid(Sid::administrators(), Rights::FullControl),
            ace_sid(Sid::users(), Rights::ReadExecute),
        ],
        entries: vec![],
    };
    assert!(records_folder_trusted(&ok));
    assert!(records_folder_trusted(&DirFact { owner: Sid::system(), ..ok.clone() }));
    assert!(!records_folder_trusted(&DirFact { owner: Sid::users(), ..ok.clone() }));
    assert!(!records_folder_trusted(&DirFact { protected: false, ..ok.clone() }));
    let mut w = ok.clone();
    w.explicit_aces.push(ace_sid(Sid::users(), Rights::Modify));
    assert!(!records_folder_trusted(&w));
}

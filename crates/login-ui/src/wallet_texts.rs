//! The wallet's words, in French (first) and English.

use oidc_core::Locale;

pub struct WalletTexts {
    pub title: &'static str,
    pub signed_in_as: &'static str,
    pub national_id: &'static str,
    pub authenticators: &'static str,
    pub authenticators_lead: &'static str,
    pub none_yet: &'static str,
    pub kind: &'static str,
    pub name: &'static str,
    pub status: &'static str,
    pub created: &'static str,
    pub last_used: &'static str,
    pub active: &'static str,
    pub pending: &'static str,
    pub remove: &'static str,
    pub add_app: &'static str,
    pub add_app_lead: &'static str,
    pub scan: &'static str,
    pub secret_text: &'static str,
    pub first_code: &'static str,
    pub first_code_hint: &'static str,
    pub activate: &'static str,
    pub back: &'static str,
    pub totp_activated: &'static str,
    pub totp_wrong_code: &'static str,
    pub removed: &'static str,
    pub not_found: &'static str,
    pub sign_out: &'static str,
    pub sign_out_lead: &'static str,
    pub kind_app: &'static str,
    pub kind_token: &'static str,
    pub kind_other: &'static str,
}

impl WalletTexts {
    pub fn kind_name(&self, kind: &str) -> &'static str {
        match kind {
            "totp" => self.kind_app,
            "hotp" | "totp-token" => self.kind_token,
            _ => self.kind_other,
        }
    }
}

pub static FR: WalletTexts = WalletTexts {
    title: "Mon portefeuille",
    signed_in_as: "Vous êtes connecté en tant que",
    national_id: "Identifiant national",
    authenticators: "Mes moyens d'authentification",
    authenticators_lead: "Les applications et boîtiers qui produisent vos codes OTP. Retirez sans attendre un moyen perdu ou que vous ne reconnaissez pas.",
    none_yet: "Aucun moyen enregistré : vous pouvez recevoir vos codes par courriel, ou ajouter une application ci-dessous.",
    kind: "Type",
    name: "Nom",
    status: "État",
    created: "Ajouté le",
    last_used: "Dernière utilisation",
    active: "Actif",
    pending: "En attente du premier code",
    remove: "Retirer",
    add_app: "Ajouter une application (FreeOTP, Google Authenticator)",
    add_app_lead: "Installez d'abord FreeOTP ou Google Authenticator sur votre téléphone.",
    scan: "Scannez ce QR code avec l'application de votre téléphone.",
    secret_text: "Si vous ne pouvez pas scanner, saisissez cette clé dans l'application :",
    first_code: "Premier code affiché par l'application",
    first_code_hint: "L'application n'est active qu'après ce premier code correct.",
    activate: "Activer l'application",
    back: "Retour au portefeuille",
    totp_activated: "L'application est active : vous pouvez utiliser ses codes pour vous connecter.",
    totp_wrong_code: "Le code est incorrect ou a expiré : l'application n'est pas activée. Recommencez l'ajout.",
    removed: "Le moyen d'authentification a été retiré.",
    not_found: "Ce moyen d'authentification n'existe pas ou ne vous appartient pas.",
    sign_out: "Me déconnecter",
    sign_out_lead: "Termine votre session Caducée et invalide les jetons qu'elle a servi à obtenir.",
    kind_app: "Application OTP",
    kind_token: "Boîtier OTP",
    kind_other: "Autre",
};

pub static EN: WalletTexts = WalletTexts {
    title: "My wallet",
    signed_in_as: "You are signed in as",
    national_id: "National identifier",
    authenticators: "My authenticators",
    authenticators_lead: "The apps and tokens that produce your OTP codes. Remove at once any you lost or do not recognise.",
    none_yet: "None registered: you can receive your codes by e-mail, or add an app below.",
    kind: "Type",
    name: "Name",
    status: "Status",
    created: "Added",
    last_used: "Last used",
    active: "Active",
    pending: "Waiting for its first code",
    remove: "Remove",
    add_app: "Add an app (FreeOTP, Google Authenticator)",
    add_app_lead: "First install FreeOTP or Google Authenticator on your phone.",
    scan: "Scan this QR code with your phone's app.",
    secret_text: "If you cannot scan, type this key into the app:",
    first_code: "First code shown by the app",
    first_code_hint: "The app works only after this first correct code.",
    activate: "Activate the app",
    back: "Back to the wallet",
    totp_activated: "The app is active: you can sign in with its codes.",
    totp_wrong_code: "The code is wrong or expired: the app is not active. Start adding it again.",
    removed: "The authenticator was removed.",
    not_found: "This authenticator does not exist or is not yours.",
    sign_out: "Sign me out",
    sign_out_lead: "Ends your Caducée session and invalidates the tokens obtained with it.",
    kind_app: "OTP app",
    kind_token: "OTP token",
    kind_other: "Other",
};

pub fn wallet_texts(locale: Locale) -> &'static WalletTexts {
    match locale {
        Locale::Fr => &FR,
        Locale::En => &EN,
    }
}
